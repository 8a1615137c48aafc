//! A `hookd` process as an operator runs it (the binary cargo built for the tests, or another
//! build of it under an emulator), its output captured, and a minimal blocking HTTP client.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// `hookd` (this build) with a clean environment: the data directory in `dir`, listening on an
/// ephemeral loopback port, no other `HOOKD_*` variable from the caller.
pub fn hookd(dir: &Path) -> Command {
    prepare(Command::new(env!("CARGO_BIN_EXE_hookd")), dir)
}

/// `hookd serve` (this build).
pub fn serve(dir: &Path) -> Command {
    let mut cmd = hookd(dir);
    cmd.arg("serve");
    cmd
}

/// The clean environment of [`hookd`], for a command that runs some other build of it.
pub fn prepare(mut cmd: Command, dir: &Path) -> Command {
    cmd.current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("NOTIFY_SOCKET")
        .env("HOOKD_LISTEN", "127.0.0.1:0")
        .env("HOOKD_DATA_DIR", dir.join("data"));
    for (k, _) in std::env::vars() {
        if k.starts_with("HOOKD_") && k != "HOOKD_LISTEN" && k != "HOOKD_DATA_DIR" {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// How long a start may take before the test gives up (an emulated start compiles plugins
/// slowly).
const START_SECS: u64 = 60;

/// A running `hookd serve` with its output captured.
pub struct Daemon {
    pub child: Child,
    pub addr: String,
    pub stdout_lines: Vec<String>,
    pub stderr_rx: mpsc::Receiver<String>,
    pub stderr_lines: Vec<String>,
}

impl Daemon {
    /// Spawns `cmd` (a `hookd serve ...` command) and waits for the "listening" log line to learn
    /// the address.
    pub fn start(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, stderr_rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut d = Self {
            child,
            addr: String::new(),
            stdout_lines: Vec::new(),
            stderr_rx,
            stderr_lines: Vec::new(),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(START_SECS);
        while d.addr.is_empty() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = d
                .stderr_rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("hookd did not start: {:?}", d.stderr_lines));
            if line.contains("hookd listening") {
                let at = line.find("127.0.0.1:").unwrap();
                d.addr = line[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
            }
            d.stderr_lines.push(line);
        }
        d
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        http(
            &self.addr,
            method,
            path,
            token,
            body.map(|b| b.to_string()).as_deref(),
        )
    }

    /// Sends the signal `name` (`"HUP"`, `"TERM"`, ...) to the process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name}");
    }

    /// Reads the log until some line (this one or one read before) contains `needle`; at most
    /// 10 s. Every line read is kept in `stderr_lines`.
    pub fn wait_log(&mut self, needle: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !self.stderr_lines.iter().any(|l| l.contains(needle)) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self
                .stderr_rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no log line with {needle:?}: {:?}", self.stderr_lines));
            self.stderr_lines.push(line);
        }
    }

    /// SIGTERM, then wait for exit; returns the exit code and collects all output.
    pub fn terminate(mut self) -> (i32, Vec<String>, Vec<String>) {
        self.signal("TERM");
        let code = wait_exit(&mut self.child, Duration::from_secs(15));
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        self.stdout_lines.extend(out.lines().map(str::to_owned));
        while let Ok(line) = self.stderr_rx.recv_timeout(Duration::from_millis(500)) {
            self.stderr_lines.push(line);
        }
        (
            code,
            std::mem::take(&mut self.stdout_lines),
            std::mem::take(&mut self.stderr_lines),
        )
    }
}

/// A daemon a test leaves behind (it failed half-way) is killed: nothing outlives the test, and
/// no process keeps a test's mount busy.
impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn wait_exit(child: &mut Child, limit: Duration) -> i32 {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("hookd did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A minimal blocking HTTP/1.1 client, enough for these tests.
pub fn http(addr: &str, method: &str, path: &str, token: &str, body: Option<&str>) -> (u16, Value) {
    use std::io::Write as _;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    let json = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| serde_json::from_str(b).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    (status, json)
}
