//! systemd's readiness protocol (`sd_notify`), the few lines of it hookd needs.
//!
//! Under a unit with `Type=notify`, systemd puts the path of a datagram socket in
//! `NOTIFY_SOCKET`; the service sends `READY=1` there once it serves, `RELOADING=1` while it
//! re-reads its configuration, `STOPPING=1` when it begins to shut down, and `STATUS=...` lines
//! that `systemctl status` shows. A path starting with `@` names a socket in Linux's abstract
//! namespace. Without `NOTIFY_SOCKET` (not under systemd) every call does nothing.
//!
//! The address parser is pure (and fuzzed); sending is behind the `server` feature.
//!
//! A failed send is logged and otherwise ignored: readiness is a courtesy to the supervisor and
//! must never stop the daemon (systemd itself then times the start out and says why).

#[cfg(feature = "server")]
use std::io;
use std::os::unix::net::SocketAddr;
#[cfg(feature = "server")]
use std::os::unix::net::UnixDatagram;

/// The variable systemd sets for a `Type=notify` service.
pub const SOCKET_VAR: &str = "NOTIFY_SOCKET";

/// The longest `NOTIFY_SOCKET` value taken, plus one (a `sockaddr_un` path holds 108 bytes).
pub const MAX_ADDRESS: usize = 108;

/// Where notifications go, read from `NOTIFY_SOCKET` once.
#[cfg(feature = "server")]
#[derive(Debug)]
pub struct Notifier {
    target: Option<SocketAddr>,
}

#[cfg(feature = "server")]
impl Notifier {
    /// From the environment; `Err` describes a `NOTIFY_SOCKET` that cannot be a socket address.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var_os(SOCKET_VAR) {
            None => Ok(Self { target: None }),
            Some(value) => {
                let value = value
                    .into_string()
                    .map_err(|_| format!("{SOCKET_VAR} is not UTF-8"))?;
                Ok(Self {
                    target: Some(parse_address(&value)?),
                })
            }
        }
    }

    /// Whether a supervisor listens (hookd runs under `Type=notify`).
    pub fn active(&self) -> bool {
        self.target.is_some()
    }

    /// Sends one notification (lines of `KEY=value`); does nothing without a supervisor.
    pub fn send(&self, message: &str) -> io::Result<()> {
        let Some(target) = &self.target else {
            return Ok(());
        };
        let socket = UnixDatagram::unbound()?;
        // Never wait on the supervisor: a full socket buffer is an error, not a stalled start
        // or shutdown.
        socket.set_nonblocking(true)?;
        let sent = socket.send_to_addr(message.as_bytes(), target)?;
        if sent != message.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short datagram"));
        }
        Ok(())
    }

    /// [`send`](Self::send), logging a failure instead of returning it.
    pub fn tell(&self, message: &str) {
        if let Err(e) = self.send(message) {
            tracing::warn!(error = %e, message = %message.replace('\n', " "), "cannot notify systemd");
        }
    }
}

/// `NOTIFY_SOCKET`'s value as an address: a filesystem path (absolute), or `@name` for the
/// abstract namespace.
pub fn parse_address(value: &str) -> Result<SocketAddr, String> {
    if value.is_empty() {
        return Err(format!("{SOCKET_VAR} is empty"));
    }
    if value.len() >= MAX_ADDRESS {
        return Err(format!(
            "{SOCKET_VAR} is {} bytes long; a socket address holds at most {}",
            value.len(),
            MAX_ADDRESS - 1
        ));
    }
    if value.contains('\0') {
        return Err(format!("{SOCKET_VAR} contains a NUL byte"));
    }
    if let Some(name) = value.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        return SocketAddr::from_abstract_name(name.as_bytes())
            .map_err(|e| format!("{SOCKET_VAR} {value:?}: {e}"));
    }
    if !value.starts_with('/') {
        return Err(format!(
            "{SOCKET_VAR} {value:?} is neither an absolute path nor an @abstract name"
        ));
    }
    SocketAddr::from_pathname(value).map_err(|e| format!("{SOCKET_VAR} {value:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_paths_or_abstract_names() {
        assert!(parse_address("/run/systemd/notify").is_ok());
        assert!(parse_address("@/org/freedesktop/systemd1/notify/123").is_ok());
        for bad in ["", "relative/path", "a\0b", &"/x".repeat(60)] {
            assert!(parse_address(bad).is_err(), "{bad:?} taken");
        }
    }

    #[cfg(feature = "server")]
    #[test]
    fn a_notification_arrives_as_one_datagram() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("hookd-notify-test-{}", std::process::id());
        let receiver = UnixDatagram::bind_addr(
            &SocketAddr::from_abstract_name(name.as_bytes()).expect("address"),
        )
        .expect("bind");
        let notifier = Notifier {
            target: Some(parse_address(&format!("@{name}")).expect("parse")),
        };
        assert!(notifier.active());
        notifier.send("READY=1\nSTATUS=serving").expect("send");
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=serving");
    }

    #[cfg(feature = "server")]
    #[test]
    fn without_a_supervisor_nothing_is_sent() {
        let notifier = Notifier { target: None };
        assert!(!notifier.active());
        notifier.send("READY=1").expect("a no-op");
    }
}
