//! The emulator's HTTP layer against raw connections: a client that sends too much, too slowly or
//! not at all is refused or let go, and every refusal is in Hetzner's error shape.

use std::time::{Duration, Instant};

use serde_json::Value;
use terrace_providers::emulator::{Emulator, EmulatorConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::config;

async fn emulator() -> Emulator {
    let config = EmulatorConfig { read_timeout: Duration::from_millis(300), ..config() };
    Emulator::start("127.0.0.1:0".parse().expect("an address"), config).await.expect("the emulator starts")
}

/// Sends `request` on a new connection and reads until the server closes it (or 5 s pass).
async fn exchange(emulator: &Emulator, request: &[u8]) -> (String, Duration) {
    let mut stream = TcpStream::connect(emulator.local_addr()).await.expect("connects");
    stream.write_all(request).await.expect("sends");
    let start = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server let the connection hang: {:?}", String::from_utf8_lossy(&answer));
    (String::from_utf8_lossy(&answer).into_owned(), start.elapsed())
}

/// The status line's code and the JSON error's code of an answer.
fn error_of(answer: &str) -> (u16, String) {
    let status: u16 = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let json: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {answer:?}"));
    let code = json["error"]["code"].as_str().unwrap_or_else(|| panic!("no error.code: {answer:?}")).to_owned();
    assert!(json["error"]["message"].is_string(), "{answer:?}");
    (status, code)
}

#[tokio::test]
async fn a_body_that_never_arrives_is_a_408_and_the_connection_closes() {
    let emulator = emulator().await;
    let request = b"POST /v1/ssh_keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\":";
    let (answer, took) = exchange(&emulator, request).await;
    assert_eq!(error_of(&answer), (408, "timeout".to_owned()), "{answer}");
    assert!(took < Duration::from_secs(3), "waited {took:?}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn half_sent_headers_are_let_go() {
    let emulator = emulator().await;
    let mut held = Vec::new();
    for _ in 0..50 {
        let mut stream = TcpStream::connect(emulator.local_addr()).await.expect("connects");
        stream.write_all(b"GET /v1/servers HTTP/1.1\r\nHost: x\r\n").await.expect("sends");
        held.push(stream);
    }
    for mut stream in held {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "a half-sent request held its connection");
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn too_large_bodies_uris_and_headers_get_hetzner_shaped_errors() {
    let emulator = emulator().await;
    let body = format!("{{\"name\":\"{}\"}}", "x".repeat(2 << 20));
    let request = format!(
        "POST /v1/ssh_keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (answer, _) = exchange(&emulator, request.as_bytes()).await;
    assert_eq!(error_of(&answer).0, 413, "{}", &answer[..answer.len().min(300)]);

    let request =
        format!("GET /v1/servers?name={} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n", "a".repeat(10_000));
    let (answer, _) = exchange(&emulator, request.as_bytes()).await;
    assert_eq!(error_of(&answer).0, 414, "{answer}");

    let request = format!(
        "GET /v1/servers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nX-Big: {}\r\n\r\n",
        "b".repeat(20_000)
    );
    let (answer, _) = exchange(&emulator, request.as_bytes()).await;
    assert_eq!(error_of(&answer).0, 431, "{answer}");
    emulator.shutdown().await;
}
