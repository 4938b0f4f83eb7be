//! The server's connections over real loopback TCP: slow and idle clients are
//! disconnected, and a connection over the limit gets the API's JSON error at once.

mod common;
use common::core_state;
use server::http::ConnectionLimits;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The server in this process on a free loopback port, with `limits`.
struct Served {
    address: std::net::SocketAddr,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn serve(limits: ConnectionLimits) -> Served {
    let (state, dir) = core_state::on_temporary_file().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::launch_with_listener(
        listener,
        state,
        limits,
        async {
            let _ = stopped.await;
        },
    ));
    Served {
        address,
        _dir: dir,
        _stop: stop,
    }
}

/// A request anyone may make (the health check): these tests are about connections.
const HEALTH: &str = "GET /api/health HTTP/1.1\r\nhost: stepline\r\n\r\n";

/// Reads until the server closes the connection (or `within` passes): what it sent.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let served = serve(ConnectionLimits {
        header_timeout: Duration::from_millis(500),
        ..ConnectionLimits::default()
    })
    .await;
    let mut slow = TcpStream::connect(served.address).await.unwrap();
    slow.write_all(b"GET /api/health HTTP/1.1\r\nhost: s")
        .await
        .unwrap();
    let started = Instant::now();
    let answer = read_until_closed(&mut slow, Duration::from_secs(10)).await;
    assert!(answer.is_some(), "still open after 10 s");
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn a_keep_alive_connection_left_idle_is_closed() {
    let served = serve(ConnectionLimits {
        header_timeout: Duration::from_millis(500),
        ..ConnectionLimits::default()
    })
    .await;
    let mut idle = TcpStream::connect(served.address).await.unwrap();
    idle.write_all(HEALTH.as_bytes()).await.unwrap();
    // The answer comes, then the connection stays idle until the server closes it.
    let answer = read_until_closed(&mut idle, Duration::from_secs(10))
        .await
        .expect("closed within 10 s");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_connection_over_the_limit_gets_a_json_503_and_the_others_are_served() {
    let served = serve(ConnectionLimits {
        max_connections: 8,
        header_timeout: Duration::from_secs(60),
    })
    .await;
    // Eight clients hold every connection with unfinished headers.
    let mut holders = Vec::new();
    for _ in 0..8 {
        let mut holder = TcpStream::connect(served.address).await.unwrap();
        holder.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        holders.push(holder);
    }
    let mut ninth = TcpStream::connect(served.address).await.unwrap();
    let answer = read_until_closed(&mut ninth, Duration::from_secs(10))
        .await
        .expect("answered and closed");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains("content-type: application/json"),
        "{answer}"
    );
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"], "unavailable", "{body}");

    // Once the holders go, their places are free again.
    drop(holders);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut client = TcpStream::connect(served.address).await.unwrap();
        client
            .write_all(b"GET /api/health HTTP/1.1\r\nhost: s\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = read_until_closed(&mut client, Duration::from_secs(10))
            .await
            .unwrap_or_default();
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            answer.starts_with("HTTP/1.1 503") && Instant::now() < deadline,
            "{answer}"
        );
        tokio::task::yield_now().await;
    }
}
