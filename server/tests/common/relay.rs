//! A relay that cuts the way to an engine's server and restores it, for outage tests.

/// A TCP relay to an engine's server that the test can cut and restore: an outage of
/// the network path, with the real server behind it.
pub struct Relay {
    port: u16,
    open: tokio::sync::watch::Sender<bool>,
}

impl Relay {
    pub async fn to(target: &str) -> Self {
        let target = target.trim_start_matches("http://").to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (open, watch) = tokio::sync::watch::channel(true);
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let mut watch = watch.clone();
                let target = target.clone();
                tokio::spawn(async move {
                    if !*watch.borrow() {
                        return; // cut: the connection is dropped at once
                    }
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watch.wait_for(|open| !open) => {}
                    }
                });
            }
        });
        Self { port, open }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set(&self, open: bool) {
        self.open.send_replace(open);
    }
}
