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

/// An account `login` with `password`, made in the store.
async fn account_with_password(state: &server::http::AppState, login: &str, password: &str) {
    let hash = server::auth::password::hash(password.to_owned())
        .await
        .unwrap();
    let viewer = app::model::identity::RoleBinding::everywhere(app::model::identity::Role::Viewer);
    core_state::account(state, login, Some(&hash), &[viewer]).await;
}

/// The server in this process on a free loopback port, serving as `serving` says, with an
/// account `ana` (password `a long passphrase`).
async fn serve_as(serving: server::http::Serving) -> Served {
    let (state, dir) = core_state::on_temporary_file().await;
    account_with_password(&state, "ana", "a long passphrase").await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::launch(listener, state, serving, async {
        let _ = stopped.await;
    }));
    Served {
        address,
        _dir: dir,
        _stop: stop,
    }
}

const SIGN_IN_AS_ANA: &str = r#"{"login":"ana","password":"a long passphrase"}"#;

#[tokio::test]
async fn stepline_serves_https_itself_with_secure_cookies_and_hsts() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let files = tempfile::tempdir().unwrap();
    let (cert, key) = (files.path().join("cert.pem"), files.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let served = serve_as(server::http::Serving {
        tls: Some(server::http::tls_settings(&cert, &key).unwrap()),
        ..Default::default()
    })
    .await;

    let client = reqwest::Client::builder()
        .tls_certs_only(vec![reqwest::Certificate::from_pem(
            certified.cert.pem().as_bytes(),
        )
        .unwrap()])
        .resolve("localhost", served.address)
        .build()
        .unwrap();
    let base = format!("https://localhost:{}", served.address.port());
    let health = client
        .get(format!("{base}/api/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    assert_eq!(
        health.version(),
        reqwest::Version::HTTP_2,
        "h2 offered by ALPN"
    );
    assert_eq!(
        health.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let signed_in = client
        .post(format!("{base}/api/auth/sign-in"))
        .header("content-type", "application/json")
        .header("origin", &base)
        .body(SIGN_IN_AS_ANA)
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), reqwest::StatusCode::OK);
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with("stepline_session=") && cookie.ends_with("; Secure"),
        "{cookie}"
    );

    // Plain HTTP to the TLS port is not served.
    let mut plain = TcpStream::connect(served.address).await.unwrap();
    plain.write_all(HEALTH.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut plain, Duration::from_secs(5)).await;
    assert!(
        answer
            .as_deref()
            .is_some_and(|text| !text.contains("200 OK")),
        "{answer:?}"
    );
}

/// A sign-in request sent over plain TCP with `headers`: the `Set-Cookie` it got.
async fn sign_in_cookie(address: std::net::SocketAddr, headers: &str) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let request = format!(
        "POST /api/auth/sign-in HTTP/1.1\r\nhost: stepline\r\norigin: http://stepline\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n{SIGN_IN_AS_ANA}",
        SIGN_IN_AS_ANA.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    answer
        .lines()
        .find_map(|line| line.strip_prefix("set-cookie: "))
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn only_a_trusted_proxy_may_say_the_browser_used_https() {
    let trusting = serve_as(server::http::Serving {
        trusted_proxies: "127.0.0.1".parse().unwrap(),
        ..Default::default()
    })
    .await;
    let forwarded = "x-forwarded-proto: https\r\nx-forwarded-for: 203.0.113.9\r\n";
    let cookie = sign_in_cookie(trusting.address, forwarded).await;
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    let cookie = sign_in_cookie(trusting.address, "").await;
    assert!(
        !cookie.contains("Secure"),
        "no forwarded scheme, plain HTTP: {cookie}"
    );

    let distrusting = serve_as(server::http::Serving::default()).await;
    let cookie = sign_in_cookie(distrusting.address, forwarded).await;
    assert!(
        !cookie.contains("Secure"),
        "a stranger's X-Forwarded-Proto: {cookie}"
    );
}
