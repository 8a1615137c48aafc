//! The address ranges endpoints may not target, as data: every row names its network, the RFC
//! that assigns it, and why it is refused. Built from the IANA IPv4 and IPv6 Special-Purpose
//! Address Registries (rows not globally reachable), plus multicast, the reserved class E and
//! non-global-unicast IPv6 space, and cloud metadata addresses.
//!
//! An address is judged by the most specific row that contains it. A few IPv6 ranges carry an
//! IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo): those are judged as the IPv4 address they
//! carry, so `[::ffff:127.0.0.1]` and `[2002:7f00:1::]` are loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Cidr;

/// What the rule does with an address in a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// Refused (unless an allow-listed network contains it).
    Deny,
    /// Reachable: the global unicast space that the deny rows carve holes in.
    Allow,
    /// Judged as the IPv4 address it carries.
    Embedded(Carrier),
}

/// Where an IPv6 address carries an IPv4 one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// The last 32 bits (IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`).
    Low32,
    /// 6to4 `2002:AABB:CCDD::/48` carries `AA.BB.CC.DD`.
    SixToFour,
    /// Teredo `2001:0:server:flags:port:client` carries the client's address, bits inverted.
    TeredoClient,
}

impl Carrier {
    pub fn extract(self, ip: Ipv6Addr) -> Ipv4Addr {
        let o = ip.octets();
        let low32 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
        match self {
            Self::Low32 => low32,
            Self::SixToFour => Ipv4Addr::new(o[2], o[3], o[4], o[5]),
            Self::TeredoClient => Ipv4Addr::from(!u32::from(low32)),
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub network: Cidr,
    /// Completes "address X is ...".
    pub what: &'static str,
    /// Where the range is assigned.
    pub source: &'static str,
    pub treatment: Treatment,
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Cidr {
    Cidr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), prefix)
}

const fn v6(segments: [u16; 8], prefix: u8) -> Cidr {
    let [a, b, c, d, e, f, g, h] = segments;
    Cidr::new(IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)), prefix)
}

const fn row(network: Cidr, what: &'static str, source: &'static str) -> Range {
    Range {
        network,
        what,
        source,
        treatment: Treatment::Deny,
    }
}

/// The table. Order does not matter: the most specific match wins.
pub const RANGES: &[Range] = &[
    // ---- IPv4 ----
    row(
        v4(0, 0, 0, 0, 8),
        "an unspecified (\"this network\") address",
        "RFC 791",
    ),
    row(v4(10, 0, 0, 0, 8), "a private address", "RFC 1918"),
    row(
        v4(100, 64, 0, 0, 10),
        "a shared (CGNAT) address",
        "RFC 6598",
    ),
    row(v4(127, 0, 0, 0, 8), "a loopback address", "RFC 1122"),
    row(v4(169, 254, 0, 0, 16), "a link-local address", "RFC 3927"),
    row(
        v4(169, 254, 169, 254, 32),
        "a cloud metadata address",
        "AWS, GCP, Azure, OpenStack",
    ),
    row(
        v4(168, 63, 129, 16, 32),
        "a cloud metadata address",
        "Azure WireServer",
    ),
    row(v4(172, 16, 0, 0, 12), "a private address", "RFC 1918"),
    row(
        v4(192, 0, 0, 0, 24),
        "an IETF protocol assignment",
        "RFC 6890",
    ),
    row(
        v4(192, 0, 2, 0, 24),
        "a documentation address (TEST-NET-1)",
        "RFC 5737",
    ),
    row(
        v4(192, 88, 99, 0, 24),
        "a deprecated 6to4 relay anycast address",
        "RFC 7526",
    ),
    row(v4(192, 168, 0, 0, 16), "a private address", "RFC 1918"),
    row(v4(198, 18, 0, 0, 15), "a benchmarking address", "RFC 2544"),
    row(
        v4(198, 51, 100, 0, 24),
        "a documentation address (TEST-NET-2)",
        "RFC 5737",
    ),
    row(
        v4(203, 0, 113, 0, 24),
        "a documentation address (TEST-NET-3)",
        "RFC 5737",
    ),
    row(v4(224, 0, 0, 0, 4), "a multicast address", "RFC 5771"),
    row(
        v4(240, 0, 0, 0, 4),
        "a reserved (class E) address",
        "RFC 1112",
    ),
    row(
        v4(255, 255, 255, 255, 32),
        "the limited broadcast address",
        "RFC 919",
    ),
    // ---- IPv6 ----
    row(
        v6([0, 0, 0, 0, 0, 0, 0, 0], 0),
        "a reserved IPv6 address (outside global unicast 2000::/3)",
        "RFC 4291",
    ),
    Range {
        network: v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3),
        what: "a global unicast address",
        source: "RFC 4291",
        treatment: Treatment::Allow,
    },
    row(
        v6([0, 0, 0, 0, 0, 0, 0, 0], 128),
        "an unspecified address",
        "RFC 4291",
    ),
    row(
        v6([0, 0, 0, 0, 0, 0, 0, 1], 128),
        "a loopback address",
        "RFC 4291",
    ),
    row(
        v6([0, 0, 0, 0, 0, 0, 0, 0], 96),
        "a deprecated IPv4-compatible address",
        "RFC 4291",
    ),
    Range {
        network: v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96),
        what: "an IPv4-mapped address",
        source: "RFC 4291",
        treatment: Treatment::Embedded(Carrier::Low32),
    },
    row(
        v6([0, 0, 0, 0, 0xffff, 0, 0, 0], 96),
        "an IPv4-translated address",
        "RFC 2765",
    ),
    Range {
        network: v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96),
        what: "a NAT64 address",
        source: "RFC 6052",
        treatment: Treatment::Embedded(Carrier::Low32),
    },
    row(
        v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        "a local-use NAT64 address",
        "RFC 8215",
    ),
    row(
        v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
        "a discard-only address",
        "RFC 6666",
    ),
    row(
        v6([0x100, 0, 0, 1, 0, 0, 0, 0], 64),
        "a dummy IPv6 prefix address",
        "RFC 9780",
    ),
    row(
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        "an IETF protocol assignment",
        "RFC 2928",
    ),
    Range {
        network: v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32),
        what: "a Teredo address",
        source: "RFC 4380",
        treatment: Treatment::Embedded(Carrier::TeredoClient),
    },
    row(
        v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48),
        "a benchmarking address",
        "RFC 5180",
    ),
    row(
        v6([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28),
        "a deprecated ORCHID address",
        "RFC 4843",
    ),
    row(
        v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28),
        "an ORCHIDv2 address",
        "RFC 7343",
    ),
    row(
        v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
        "a documentation address",
        "RFC 3849",
    ),
    Range {
        network: v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16),
        what: "a 6to4 address",
        source: "RFC 3056",
        treatment: Treatment::Embedded(Carrier::SixToFour),
    },
    row(
        v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
        "a documentation address",
        "RFC 9637",
    ),
    row(
        v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16),
        "a segment routing (SRv6) SID",
        "RFC 9602",
    ),
    row(
        v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        "a private (unique local) address",
        "RFC 4193",
    ),
    row(
        v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128),
        "a cloud metadata address",
        "AWS",
    ),
    row(
        v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        "a link-local address",
        "RFC 4291",
    ),
    row(
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        "a deprecated site-local address",
        "RFC 3879",
    ),
    row(
        v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
        "a multicast address",
        "RFC 4291",
    ),
];

/// The most specific row containing `ip`, if any (IPv4 addresses outside every row are public).
pub fn lookup(ip: IpAddr) -> Option<&'static Range> {
    RANGES
        .iter()
        .filter(|r| r.network.contains_exact(ip))
        .max_by_key(|r| r.network.prefix())
}

/// How `ip` is judged: `Some((range, address judged))` when it is refused, following embedded
/// IPv4 addresses.
pub fn denied(ip: IpAddr) -> Option<(&'static Range, IpAddr)> {
    let range = lookup(ip)?;
    match (range.treatment, ip) {
        (Treatment::Deny, _) => Some((range, ip)),
        (Treatment::Allow, _) => None,
        (Treatment::Embedded(carrier), IpAddr::V6(v6)) => {
            let inner = IpAddr::V4(carrier.extract(v6));
            lookup(inner)
                .filter(|r| r.treatment == Treatment::Deny)
                .map(|r| (r, inner))
        }
        (Treatment::Embedded(_), IpAddr::V4(_)) => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// An address inside each row, judged by that row (or, for rows carrying IPv4, by the
    /// address they carry). Every row must be named here.
    const SAMPLES: &[(&str, &str, Option<&str>)] = &[
        ("0.1.2.3", "0.0.0.0/8", Some("unspecified")),
        ("10.1.2.3", "10.0.0.0/8", Some("private")),
        ("100.64.0.1", "100.64.0.0/10", Some("CGNAT")),
        ("100.127.255.254", "100.64.0.0/10", Some("CGNAT")),
        ("127.0.0.1", "127.0.0.0/8", Some("loopback")),
        ("127.255.255.255", "127.0.0.0/8", Some("loopback")),
        ("169.254.1.1", "169.254.0.0/16", Some("link-local")),
        ("169.254.169.254", "169.254.169.254/32", Some("metadata")),
        ("168.63.129.16", "168.63.129.16/32", Some("metadata")),
        ("172.16.0.1", "172.16.0.0/12", Some("private")),
        ("172.31.255.1", "172.16.0.0/12", Some("private")),
        ("192.0.0.8", "192.0.0.0/24", Some("IETF")),
        ("192.0.2.10", "192.0.2.0/24", Some("documentation")),
        ("192.88.99.1", "192.88.99.0/24", Some("6to4 relay")),
        ("192.168.1.1", "192.168.0.0/16", Some("private")),
        ("198.19.0.1", "198.18.0.0/15", Some("benchmarking")),
        ("198.51.100.7", "198.51.100.0/24", Some("documentation")),
        ("203.0.113.9", "203.0.113.0/24", Some("documentation")),
        ("239.255.255.250", "224.0.0.0/4", Some("multicast")),
        ("240.0.0.1", "240.0.0.0/4", Some("reserved")),
        ("255.255.255.255", "255.255.255.255/32", Some("broadcast")),
        ("::2:3", "::/96", Some("IPv4-compatible")),
        ("400::1", "::/0", Some("reserved IPv6")),
        ("2606:4700::1111", "2000::/3", None),
        ("::", "::/128", Some("unspecified")),
        ("::1", "::1/128", Some("loopback")),
        ("::127.0.0.1", "::/96", Some("IPv4-compatible")),
        ("::169.254.169.254", "::/96", Some("IPv4-compatible")),
        ("::10.0.0.1", "::/96", Some("IPv4-compatible")),
        ("::ffff:127.0.0.1", "::ffff:0.0.0.0/96", Some("loopback")),
        ("::ffff:8.8.8.8", "::ffff:0.0.0.0/96", None),
        (
            "::ffff:0:7f00:1",
            "::ffff:0:0:0/96",
            Some("IPv4-translated"),
        ),
        ("64:ff9b::a9fe:a9fe", "64:ff9b::/96", Some("metadata")),
        ("64:ff9b::808:808", "64:ff9b::/96", None),
        ("64:ff9b:1::1", "64:ff9b:1::/48", Some("local-use NAT64")),
        ("100::1", "100::/64", Some("discard")),
        ("100:0:0:1::1", "100:0:0:1::/64", Some("dummy")),
        ("2001:1::1", "2001::/23", Some("IETF")),
        (
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            "2001::/32",
            Some("loopback"),
        ),
        ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", "2001::/32", None),
        ("2001:2::1", "2001:2::/48", Some("benchmarking")),
        ("2001:10::1", "2001:10::/28", Some("ORCHID")),
        ("2001:20::1", "2001:20::/28", Some("ORCHIDv2")),
        ("2001:db8::1", "2001:db8::/32", Some("documentation")),
        ("2002:7f00:1::1", "2002::/16", Some("loopback")),
        ("2002:a9fe:a9fe::", "2002::/16", Some("metadata")),
        ("2002:0a00:0001::1", "2002::/16", Some("private")),
        ("2002:0808:0808::1", "2002::/16", None),
        ("3fff::1", "3fff::/20", Some("documentation")),
        ("5f00::1", "5f00::/16", Some("SRv6")),
        ("fd12::1", "fc00::/7", Some("unique local")),
        ("fd00:ec2::254", "fd00:ec2::254/128", Some("metadata")),
        ("fe80::1", "fe80::/10", Some("link-local")),
        ("fec0::1", "fec0::/10", Some("site-local")),
        ("ff02::1", "ff00::/8", Some("multicast")),
    ];

    #[test]
    fn every_row_is_tested_and_judges_its_samples() {
        for (ip, network, verdict) in SAMPLES {
            let ip: IpAddr = ip.parse().unwrap();
            let network: Cidr = network.parse().unwrap();
            assert_eq!(
                lookup(ip).unwrap().network,
                network,
                "{ip} falls in {network:?}"
            );
            match (denied(ip), verdict) {
                (Some((range, _)), Some(word)) => {
                    assert!(range.what.contains(word), "{ip}: {}", range.what);
                }
                (None, None) => {}
                (got, want) => panic!("{ip}: {got:?}, expected {want:?}"),
            }
        }
        for range in RANGES {
            assert!(
                SAMPLES
                    .iter()
                    .any(|(_, n, _)| n.parse::<Cidr>().unwrap() == range.network),
                "row {:?} has no sample",
                range.network
            );
            assert!(!range.source.is_empty() && !range.what.is_empty());
        }
    }

    /// The README's table of ranges lists every row.
    #[test]
    fn the_readme_lists_every_row() {
        let readme = include_str!("../../README.md");
        for range in RANGES {
            let shown = format!("`{:?}`", range.network);
            let also = format!("{:?} ", range.network);
            assert!(
                readme.contains(&shown) || readme.contains(&also),
                "README.md lacks {shown}"
            );
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "8.8.8.8",
            "93.184.216.34",
            "1.1.1.1",
            "2a00:1450::1",
            "2606:4700::1111",
        ] {
            assert!(denied(ip.parse().unwrap()).is_none(), "{ip}");
        }
    }
}
