//! Real alert receivers as processes of their own (server/tests/receivers/receiver.py): a
//! webhook receiver (HTTP) and an SMTP server (aiosmtpd), each writing what it took to a
//! file, one JSON line a message. Their Python is `STEPLINE_RECEIVER_PYTHON` (scripts/test.sh
//! sets it from scripts/receivers.sh).

use serde_json::Value;
use std::path::{Path, PathBuf};
use tokio::io::AsyncBufReadExt;

/// A free port on loopback (nothing listens on it until a receiver is started there).
pub async fn free_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// One receiver process, killed when dropped.
pub struct Receiver {
    _process: tokio::process::Child,
    out: PathBuf,
}

impl Receiver {
    /// Starts a `webhook` or `smtp` receiver on `port`, writing to a file in `dir`, and
    /// waits until it accepts connections.
    pub async fn start(kind: &str, port: u16, dir: &Path) -> Self {
        let python = std::env::var("STEPLINE_RECEIVER_PYTHON").expect(
            "STEPLINE_RECEIVER_PYTHON names the receivers' Python (scripts/receivers.sh python)",
        );
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/receivers/receiver.py");
        let out = dir.join(format!("{kind}-{port}.jsonl"));
        let mut process = tokio::process::Command::new(python)
            .arg(script)
            .arg(kind)
            .arg(port.to_string())
            .arg(&out)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(process.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
            .await
            .expect("the receiver starts within 30 s")
            .unwrap();
        assert_eq!(
            first.as_deref(),
            Some("listening"),
            "{kind} receiver on {port}"
        );
        Self {
            _process: process,
            out,
        }
    }

    /// Every message it took, in order.
    pub fn messages(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}
