//! Connections over real sockets: every phase bounded in time, slots that silent sockets cannot
//! hold, the per-address cap, the request line rules, and graceful shutdown.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::{TestServer, ADMIN_TOKEN, ENDPOINTS, SEED_BODY};
use hyper::StatusCode;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An HTTP/2 SETTINGS frame with no settings.
const EMPTY_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

/// A connection to `addr` from the loopback address `from` (127.0.0.0/8 all reach this host).
async fn connect_from(addr: SocketAddr, from: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Reads until the server closes the connection; returns what it sent and when it closed.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut out = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server closes the connection within {within:?}; it sent {:?}",
        String::from_utf8_lossy(&out)
    );
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

/// Starts a POST whose body never finishes, and returns once the server is reading the body
/// (it answers `Expect: 100-continue` then): the connection is busy with a request.
async fn busy(addr: SocketAddr, from: &str) -> TcpStream {
    let mut stream = connect_from(addr, from).await;
    let head = format!(
        "POST {ENDPOINTS} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {ADMIN_TOKEN}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\r\n",
        SEED_BODY.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut interim = [0u8; 25];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut interim))
        .await
        .expect("100 Continue within 5 s")
        .unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(&SEED_BODY.as_bytes()[..10]).await.unwrap();
    stream
}

/// One request on a fresh connection from `from`; the raw answer.
async fn request_from(addr: SocketAddr, from: &str, request: &str) -> String {
    let mut stream = connect_from(addr, from).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    until_closed(&mut stream, Duration::from_secs(10)).await.0
}

const HEALTHZ: &str = "GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";

/// The review's lockout: with the limit at 50, 50 sockets that send nothing, or only (part of)
/// the HTTP/2 preface, took every slot for as long as they were held. Now a normal client is
/// served at once (an idle connection gives up its slot), and the silent sockets are closed
/// after the header timeout.
#[tokio::test]
async fn silent_sockets_do_not_lock_clients_out() {
    let s = TestServer::start_with(
        "[limits]\nmax_connections = 50\nmax_connections_per_ip = 50\nheader_read_timeout_secs = 2\n",
    )
    .await;
    for (kind, sends) in [
        ("nothing", Vec::new()),
        ("the preface's first line", b"PRI * HTTP/2.0\r\n".to_vec()),
        ("the HTTP/2 preface", H2_PREFACE.to_vec()),
        (
            "the preface and an empty SETTINGS frame",
            [H2_PREFACE, EMPTY_SETTINGS].concat(),
        ),
    ] {
        let mut silent = Vec::new();
        for _ in 0..50 {
            let mut stream = TcpStream::connect(s.addr).await.unwrap();
            stream.write_all(&sends).await.unwrap();
            silent.push(stream);
        }
        let started = Instant::now();
        let answer = request_from(s.addr, "127.0.0.1", HEALTHZ).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{kind}: {answer}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{kind}: served within the timeout plus a second"
        );
        // Every silent socket is closed by the header timeout (2 s), not held.
        for stream in &mut silent {
            let (_, took) = until_closed(stream, Duration::from_secs(5)).await;
            assert!(took < Duration::from_secs(5), "{kind}");
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let s =
        TestServer::start_with("[limits]\nheader_read_timeout_secs = 1\nidle_timeout_secs = 1\n")
            .await;
    // Nothing sent at all.
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    let (_, took) = until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(took >= Duration::from_millis(900), "{took:?}");
    // HTTP/1.1 keep-alive after a request.
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // HTTP/2 with no open stream after a request: the client's connection task ends.
    let stream = TcpStream::connect(s.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    let conn = tokio::spawn(conn);
    let req = hyper::Request::get(format!("http://{}/healthz", s.addr))
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    drop(resp);
    tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("the idle HTTP/2 connection is closed")
        .unwrap()
        .ok();
    s.stop().await;
}

/// The review's held body: `Content-Length: 100`, 10 bytes, then nothing.
#[tokio::test]
async fn a_body_that_stops_arriving_gets_408() {
    let s = TestServer::start_with("[limits]\nbody_read_timeout_secs = 1\n").await;
    let mut stream = busy(s.addr, "127.0.0.1").await;
    let (answer, took) = until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(
        answer.contains("urn:hookd:problem:request-timeout"),
        "{answer}"
    );
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(s
        .app
        .store
        .list_endpoints(None, 10)
        .await
        .unwrap()
        .items
        .is_empty());
    s.stop().await;
}

#[tokio::test]
async fn busy_slots_refuse_with_503_and_a_request_id() {
    let s =
        TestServer::start_with("[limits]\nmax_connections = 2\nmax_connections_per_ip = 2\n").await;
    let mut a = busy(s.addr, "127.0.0.1").await;
    let b = busy(s.addr, "127.0.0.1").await;
    let r = s.req("GET", "/healthz").send().await;
    let p = r.problem(503);
    assert_eq!(r.header("retry-after"), "1");
    assert!(!r.header("x-request-id").is_empty());
    assert!(p["detail"]
        .as_str()
        .unwrap()
        .contains("too many connections"));
    // One of the busy requests finishes: its connection is idle, and gives way.
    a.write_all(&SEED_BODY.as_bytes()[10..]).await.unwrap();
    let mut head = [0u8; 12];
    a.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    assert_eq!(s.req("GET", "/healthz").send().await.status, StatusCode::OK);
    drop((a, b));
    s.stop().await;
}

#[tokio::test]
async fn one_address_cannot_take_every_slot() {
    let s = TestServer::start_with(
        "[limits]\nmax_connections = 10\nmax_connections_per_ip = 2\nper_ip_exempt_networks = [\"127.0.0.3/32\"]\n",
    )
    .await;
    let a = busy(s.addr, "127.0.0.1").await;
    let b = busy(s.addr, "127.0.0.1").await;
    let answer = request_from(s.addr, "127.0.0.1", HEALTHZ).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("from your address"), "{answer}");
    // Another address is served; an exempt one has no cap.
    let answer = request_from(s.addr, "127.0.0.2", HEALTHZ).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let c = busy(s.addr, "127.0.0.3").await;
    let d = busy(s.addr, "127.0.0.3").await;
    let answer = request_from(s.addr, "127.0.0.3", HEALTHZ).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop((a, b, c, d));
    s.stop().await;
}

#[tokio::test]
async fn http11_requests_need_exactly_one_host() {
    let s = TestServer::start().await;
    let addr = s.addr;
    for (request, status) in [
        ("GET /healthz HTTP/1.1\r\nconnection: close\r\n\r\n", "400"),
        (
            "GET /healthz HTTP/1.1\r\nhost: a\r\nhost: b\r\nconnection: close\r\n\r\n",
            "400",
        ),
        ("GET /healthz HTTP/1.0\r\n\r\n", "200"),
        (HEALTHZ, "200"),
    ] {
        let answer = request_from(addr, "127.0.0.1", request).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}"))
                || answer.starts_with(&format!("HTTP/1.0 {status}")),
            "{request:?}: {answer}"
        );
        if status == "400" {
            assert!(answer.contains("Host header"), "{answer}");
        }
    }
    s.stop().await;
}

/// A connection's read buffer is bounded (64 KiB, hyper's default is about 400 KiB): a request
/// head that does not fit gets 431 and the connection is closed, one that fits is served.
#[tokio::test]
async fn request_heads_over_64_kib_get_431() {
    let s = TestServer::start().await;
    let head = |filler: usize| {
        format!(
            "GET /healthz HTTP/1.1\r\nhost: x\r\nx-filler: {}\r\nconnection: close\r\n\r\n",
            "a".repeat(filler)
        )
    };
    let answer = request_from(s.addr, "127.0.0.1", &head(32 * 1024)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let answer = request_from(s.addr, "127.0.0.1", &head(70 * 1024)).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    s.stop().await;
}

#[tokio::test]
async fn slow_header_senders_are_cut_off() {
    let s = TestServer::start_with("[limits]\nheader_read_timeout_secs = 1\n").await;
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let (answer, _) = until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(!answer.contains("200 OK"), "{answer}");
    s.stop().await;
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    let mut s = TestServer::start().await;
    let mut stream = busy(s.addr, "127.0.0.1").await;
    let task = s.begin_stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!task.is_finished(), "waits for the request in flight");
    stream.write_all(&SEED_BODY.as_bytes()[10..]).await.unwrap();
    let (answer, _) = until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // The request that was drained was committed.
    let listed = s.app.store.list_endpoints(None, 10).await.unwrap();
    assert_eq!(listed.items.len(), 1);
}

/// With `[tls]`, a client that connects and never finishes its handshake (silent, or a
/// ClientHello cut short) is closed after `limits.header_read_timeout_secs`, like one that never
/// sends a request head.
#[tokio::test]
async fn tls_handshakes_are_bounded_by_the_header_timeout() {
    let certs = tempfile::tempdir().unwrap();
    let pki = crate::common::pki::Pki::new(certs.path(), "hookd");
    let tls = crate::common::pki::tls_toml(&pki.server("server"), None);
    let s = TestServer::start_with(&format!("[limits]\nheader_read_timeout_secs = 1\n{tls}")).await;
    for opening in [
        &b""[..],
        &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc][..],
    ] {
        let mut stream = TcpStream::connect(s.addr).await.unwrap();
        stream.write_all(opening).await.unwrap();
        let (_, took) = until_closed(&mut stream, Duration::from_secs(5)).await;
        assert!(
            took >= Duration::from_millis(900),
            "{opening:?}: closed after {took:?}"
        );
    }
    s.stop().await;
}
