//! The built-in URL rules every endpoint URL passes before any plugin sees it, and again at
//! connect time against each resolved address (the DNS-rebinding guard of delivery).
//!
//! Rules: an absolute `http`/`https` URL with a host, no user-info, no fragment, no backslash,
//! within a length limit; no host name that means this machine or a metadata service; and no
//! address in a special-purpose range ([`ranges`]: loopback, private, link-local, CGNAT,
//! documentation, multicast, reserved, cloud metadata, ...), unless the address falls in a
//! configured allow-listed network (edge installs whose receivers live on the LAN).

pub mod ranges;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use url::{Host, Url};

/// Default longest accepted URL, in bytes.
pub const DEFAULT_MAX_URL_LEN: usize = 2048;

/// Host names that mean this machine (on ordinary Linux systems, from `/etc/hosts`) or a cloud
/// metadata service, with the address each stands for (an allow-listed network containing it
/// lets the name through). Names under `.localhost` are loopback too (RFC 6761).
const DENIED_NAMES: &[(&str, IpAddr)] = &[
    ("localhost", LOOPBACK_V4),
    ("localhost.localdomain", LOOPBACK_V4),
    ("localhost4", LOOPBACK_V4),
    ("localhost4.localdomain4", LOOPBACK_V4),
    ("localhost6", LOOPBACK_V6),
    ("localhost6.localdomain6", LOOPBACK_V6),
    ("ip6-localhost", LOOPBACK_V6),
    ("ip6-loopback", LOOPBACK_V6),
    ("ip6-localnet", LOOPBACK_V6),
    (
        "ip6-allnodes",
        IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)),
    ),
    (
        "ip6-allrouters",
        IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2)),
    ),
    (
        "ip6-mcastprefix",
        IpAddr::V6(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0)),
    ),
    ("metadata", METADATA),
    ("metadata.google.internal", METADATA),
    ("instance-data", METADATA),
    ("instance-data.ec2.internal", METADATA),
];
const LOOPBACK_V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const LOOPBACK_V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);
const METADATA: IpAddr = IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254));

/// An IPv4 or IPv6 network in CIDR notation, such as `192.168.10.0/24` or `fd00::/8`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The network of `addr` with a `prefix`-bit mask (at most 32 for IPv4, 128 for IPv6).
    pub const fn new(addr: IpAddr, prefix: u8) -> Self {
        Self { addr, prefix }
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` lies in this network. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`)
    /// matches IPv4 networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.contains_exact(ip.to_canonical())
    }

    /// Whether `ip`, as written, lies in this network.
    pub fn contains_exact(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{s}' is not an IP network (like 192.168.0.0/16)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{s}' has a prefix length outside 0-{max}"))?,
        };
        Ok(Self { addr, prefix })
    }
}

impl fmt::Debug for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The built-in rules with their configuration.
#[derive(Debug, Clone)]
pub struct UrlPolicy {
    /// Longest accepted URL in bytes.
    pub max_len: usize,
    /// Networks that are reachable even though they fall in a denied range.
    pub allow_networks: Vec<Cidr>,
}

impl Default for UrlPolicy {
    fn default() -> Self {
        Self {
            max_len: DEFAULT_MAX_URL_LEN,
            allow_networks: Vec::new(),
        }
    }
}

impl UrlPolicy {
    /// Checks a candidate endpoint URL and returns it in normalized form (what is stored and
    /// later requested), or a reason a client can act on.
    ///
    /// # Errors
    /// The rule that the URL breaks, as a sentence fragment ("must use http or https").
    pub fn check(&self, raw: &str) -> Result<Url, String> {
        if raw.len() > self.max_len {
            return Err(format!("must be at most {} bytes long", self.max_len));
        }
        if raw.trim() != raw || raw.chars().any(char::is_control) {
            return Err("must not contain spaces or control characters at either end".into());
        }
        // URL parsers disagree on what a backslash means (a path in one, the end of the
        // authority in another): none is accepted.
        if raw.contains('\\') {
            return Err("must not contain a backslash".into());
        }
        let url = Url::parse(raw).map_err(|e| format!("is not an absolute URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must use http or https".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not contain user info (credentials belong in a header)".into());
        }
        if url.fragment().is_some() {
            return Err("must not contain a fragment".into());
        }
        if url.as_str().len() > self.max_len {
            return Err(format!(
                "must be at most {} bytes long once normalized",
                self.max_len
            ));
        }
        match url.host() {
            None => return Err("must have a host".into()),
            Some(Host::Domain(name)) => self.check_name(name)?,
            Some(Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip))?,
            Some(Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip))?,
        }
        Ok(url)
    }

    fn check_name(&self, name: &str) -> Result<(), String> {
        let name = name.trim_end_matches('.');
        let means = DENIED_NAMES
            .iter()
            .find(|(denied, _)| *denied == name)
            .map(|(_, ip)| *ip)
            .or_else(|| name.ends_with(".localhost").then_some(LOOPBACK_V4));
        match means {
            Some(ip) if !self.allows(ip) => Err(format!(
                "host '{name}' is a local or metadata name, which is not allowed"
            )),
            _ => Ok(()),
        }
    }

    /// Checks one address: at creation for IP-literal hosts, at connect time for every resolved
    /// address.
    ///
    /// # Errors
    /// Names the kind of range the address falls in, and where that range is assigned.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        match ranges::denied(ip) {
            Some((range, judged)) if !self.allows(ip) && !self.allows(judged) => {
                let carried = if judged == ip {
                    String::new()
                } else {
                    format!(" (it carries {judged})")
                };
                Err(format!(
                    "address {ip}{carried} is {} ({}), which is not allowed (see url_policy.allow_networks)",
                    range.what, range.source
                ))
            }
            _ => Ok(()),
        }
    }

    fn allows(&self, ip: IpAddr) -> bool {
        self.allow_networks.iter().any(|n| n.contains(ip))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn deny(p: &UrlPolicy, u: &str) -> String {
        p.check(u).expect_err(u)
    }

    #[test]
    fn accepts_public_urls_and_normalizes() {
        let p = UrlPolicy::default();
        let u = p
            .check("https://hooks.slack.com/services/T00/B00/xxx")
            .unwrap();
        assert_eq!(u.as_str(), "https://hooks.slack.com/services/T00/B00/xxx");
        assert_eq!(
            p.check("HTTP://Example.COM").unwrap().as_str(),
            "http://example.com/"
        );
        assert!(p.check("https://93.184.216.34:8443/x?y=1").is_ok());
        assert!(p.check("https://[2606:4700::1111]/").is_ok());
    }

    #[test]
    fn denies_structural_problems() {
        let p = UrlPolicy::default();
        assert!(deny(&p, "ftp://example.com/").contains("http or https"));
        assert!(deny(&p, "/relative").contains("absolute"));
        assert!(deny(&p, "https://user:pw@example.com/").contains("user info"));
        assert!(deny(&p, "https://example.com/#frag").contains("fragment"));
        assert!(deny(&p, " https://example.com/").contains("spaces"));
        let long = format!("https://example.com/{}", "a".repeat(3000));
        assert!(deny(&p, &long).contains("at most 2048"));
    }

    #[test]
    fn denies_internal_targets() {
        let p = UrlPolicy::default();
        for (u, kind) in [
            ("http://127.0.0.1/", "loopback"),
            ("http://2130706433/", "loopback"),
            ("http://0x7f.1/", "loopback"),
            ("http://localhost:8080/", "local"),
            ("http://api.localhost/", "local"),
            ("http://169.254.169.254/latest/meta-data", "metadata"),
            (
                "http://168.63.129.16/",
                "a cloud metadata address (Azure WireServer), which",
            ),
            ("http://metadata.google.internal/", "metadata"),
            ("http://10.1.2.3/", "private"),
            ("http://172.20.0.1/", "private"),
            ("http://192.168.1.1/", "private"),
            ("http://100.64.0.1/", "CGNAT"),
            ("http://169.254.1.1/", "link-local"),
            ("http://224.0.0.1/", "multicast"),
            ("http://0.0.0.0/", "unspecified"),
            ("http://[::1]/", "loopback"),
            ("http://[::ffff:127.0.0.1]/", "loopback"),
            ("http://[64:ff9b::a9fe:a9fe]/", "metadata"),
            ("http://[fd12::1]/", "private"),
            ("http://[fe80::1]/", "link-local"),
            ("http://[ff02::1]/", "multicast"),
            ("http://[fd00:ec2::254]/", "metadata"),
            // The review's findings: IPv6 forms that carry or stand for IPv4 internals.
            ("http://[::127.0.0.1]/", "IPv4-compatible"),
            ("http://[::169.254.169.254]/", "IPv4-compatible"),
            ("http://[::10.0.0.1]/", "IPv4-compatible"),
            ("http://[::ffff:0:7f00:1]/", "IPv4-translated"),
            ("http://[64:ff9b:1::a00:1]/", "local-use NAT64"),
            ("http://[2002:7f00:1::]/", "loopback"),
            ("http://[2002:a9fe:a9fe::1]/", "metadata"),
            ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "loopback"),
            // Documentation and other special-purpose ranges.
            ("http://192.0.2.1/", "documentation"),
            ("http://198.51.100.1/", "documentation"),
            ("http://203.0.113.1/", "documentation"),
            ("http://192.88.99.1/", "6to4 relay"),
            ("http://[2001:db8::1]/", "documentation"),
            ("http://[3fff::1]/", "documentation"),
            ("http://[100::1]/", "discard"),
            ("http://[2001:20::1]/", "ORCHIDv2"),
            ("http://[5f00::1]/", "SRv6"),
            // Names that mean this machine.
            ("http://localhost.localdomain/", "local"),
            ("http://localhost6/", "local"),
            ("http://ip6-localhost/", "local"),
            ("http://ip6-loopback/", "local"),
            ("http://LOCALHOST./", "local"),
            ("http://instance-data/", "metadata"),
        ] {
            let why = deny(&p, u);
            assert!(why.contains(kind), "{u}: {why}");
        }
        let why = deny(&p, "http://[2002:7f00:1::]/");
        assert!(
            why.contains("carries 127.0.0.1") && why.contains("RFC 1122"),
            "{why}"
        );
    }

    #[test]
    fn backslashes_are_refused() {
        let p = UrlPolicy::default();
        for u in [
            "http://evil.example\\@127.0.0.1/",
            "https://example.com\\path",
            "https://example.com/a\\b",
        ] {
            assert!(deny(&p, u).contains("backslash"), "{u}");
        }
        assert!(p.check("https://example.com/a%5Cb").is_ok());
    }

    #[test]
    fn allow_list_opens_lan_networks() {
        let p = UrlPolicy {
            allow_networks: vec![
                "192.168.10.0/24".parse().unwrap(),
                "fd00::/8".parse().unwrap(),
            ],
            ..UrlPolicy::default()
        };
        assert!(p.check("http://192.168.10.7/hook").is_ok());
        assert!(p.check("http://[::ffff:192.168.10.7]/hook").is_ok());
        // An address that carries an allow-listed IPv4 address is judged as that address.
        assert!(p.check("http://[2002:c0a8:a07::1]/hook").is_ok());
        assert!(p.check("http://[2002:c0a8:b07::1]/hook").is_err());
        assert!(p.check("http://[fd12::1]/").is_ok());
        assert!(p.check("http://192.168.11.7/hook").is_err());
        assert!(p.check("http://localhost/").is_err());
        let lo = UrlPolicy {
            allow_networks: vec!["127.0.0.0/8".parse().unwrap()],
            ..UrlPolicy::default()
        };
        assert!(lo.check("http://localhost:9000/").is_ok());
        assert!(lo.check("http://127.0.0.1:9000/").is_ok());
    }

    #[test]
    fn cidr_parsing() {
        assert!("10.0.0.0/8".parse::<Cidr>().is_ok());
        assert!("10.0.0.1".parse::<Cidr>().is_ok());
        assert!("::/0"
            .parse::<Cidr>()
            .unwrap()
            .contains("2001:db8::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense/8".parse::<Cidr>().is_err());
        assert!("0.0.0.0/0"
            .parse::<Cidr>()
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
    }
}
