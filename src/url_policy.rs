//! The built-in URL rules every endpoint URL passes before any plugin sees it, and again at
//! connect time against each resolved address (the DNS-rebinding guard of delivery).
//!
//! Rules: an absolute `http`/`https` URL with a host, no user-info, no fragment, within a length
//! limit; and no loopback, private, link-local, CGNAT, multicast, reserved or cloud-metadata
//! target, unless the address falls in a configured allow-listed network (edge installs whose
//! receivers live on the LAN).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use url::{Host, Url};

/// Default longest accepted URL, in bytes.
pub const DEFAULT_MAX_URL_LEN: usize = 2048;

/// Host names that always mean this machine or a cloud metadata service.
const DENIED_NAMES: &[&str] = &["localhost", "metadata.google.internal", "metadata"];

/// An IPv4 or IPv6 network in CIDR notation, such as `192.168.10.0/24` or `fd00::/8`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` lies in this network. An IPv4-mapped IPv6 address matches IPv4 networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
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
        let denied = DENIED_NAMES.contains(&name) || name.ends_with(".localhost");
        if denied && !self.allows(IpAddr::V4(Ipv4Addr::LOCALHOST)) {
            return Err(format!(
                "host '{name}' is a local or metadata name, which is not allowed"
            ));
        }
        Ok(())
    }

    /// Checks one address: at creation for IP-literal hosts, at connect time for every resolved
    /// address.
    ///
    /// # Errors
    /// Names the kind of range the address falls in.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        match denied_range(ip) {
            Some(kind) if !self.allows(ip) => Err(format!(
                "address {ip} is {kind}, which is not allowed (see url_policy.allow_networks)"
            )),
            _ => Ok(()),
        }
    }

    fn allows(&self, ip: IpAddr) -> bool {
        self.allow_networks.iter().any(|n| n.contains(ip))
    }
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) and NAT64 (`64:ff9b::a.b.c.d`) addresses are judged by the
/// IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
            }
            ip
        }
        IpAddr::V4(_) => ip,
    }
}

/// The kind of non-public range `ip` falls in, if any.
fn denied_range(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => denied_v4(v4),
        IpAddr::V6(v6) => denied_v6(v6),
    }
}

fn denied_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b) {
        _ if ip == Ipv4Addr::new(169, 254, 169, 254) => "a cloud metadata address",
        (127, _) => "a loopback address",
        (0, _) => "an unspecified address",
        (10, _) | (172, 16..=31) | (192, 168) => "a private address",
        (169, 254) => "a link-local address",
        (100, 64..=127) => "a shared (CGNAT) address",
        (224..=239, _) => "a multicast address",
        (240..=255, _) => "a reserved or broadcast address",
        (192, 0) if c == 0 => "an IETF protocol address",
        (198, 18..=19) => "a benchmarking address",
        _ => return None,
    })
}

fn denied_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    Some(match first {
        _ if ip.is_loopback() => "a loopback address",
        _ if ip.is_unspecified() => "an unspecified address",
        _ if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) => "a cloud metadata address",
        0xfc00..=0xfdff => "a private (unique local) address",
        0xfe80..=0xfebf => "a link-local address",
        0xfec0..=0xfeff => "a site-local address",
        0xff00..=0xffff => "a multicast address",
        _ => return None,
    })
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
        ] {
            let why = deny(&p, u);
            assert!(why.contains(kind), "{u}: {why}");
        }
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
