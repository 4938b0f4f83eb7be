//! The real `server` binary as a process of its own, as the restart tests run it (and
//! SIGKILL it): on a database in a folder, listening on a free port.

use std::path::Path;
use tokio::io::AsyncBufReadExt;

/// Starts the binary on `dir`'s database with `env` set too, and reads its output until
/// it says where it serves: the process (killed when dropped) and its base URL.
pub async fn launch(dir: &Path, env: &[(&str, String)]) -> (tokio::process::Child, String) {
    let (child, base, _printed) = launch_printing(dir, env).await;
    (child, base)
}

/// [`launch`], and every line the process prints (its log included), as it prints them.
pub async fn launch_printing(
    dir: &Path,
    env: &[(&str, String)],
) -> (
    tokio::process::Child,
    String,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let mut child = command(dir, env).spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let (printed, receiver) = tokio::sync::mpsc::unbounded_channel();
    let (serving, served_at) = tokio::sync::oneshot::channel();
    // Read to the end whoever listens: a closed pipe would fail the process's next print.
    tokio::spawn(async move {
        let mut serving = Some(serving);
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.strip_prefix("Stepline is running: ") {
                if let Some(serving) = serving.take() {
                    let _ = serving.send(rest.to_owned());
                }
            }
            let _ = printed.send(line);
        }
    });
    let base = served_at
        .await
        .expect("the process printed where it serves before it ended");
    (
        child,
        base.trim_end_matches("/orchestration").to_owned(),
        receiver,
    )
}

/// The binary on `dir`'s database, listening on a free port, with `env` set too, its
/// output piped; killed when dropped.
pub fn command(dir: &Path, env: &[(&str, String)]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_server"));
    command
        .env("STEPLINE_LISTEN", "127.0.0.1:0")
        .env("STEPLINE_DATABASE_URL", database_url(dir))
        .env("STEPLINE_LOG", "warn")
        .env("LEPTOS_SITE_ROOT", dir.join("site"))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// The binary with no workflow definitions and the pushing sources `declared` (a
/// `--push-sources` file written in `dir`), with `secret` (a variable's name and value)
/// in its environment: the process, its base URL, and its store, to make tokens in.
pub async fn launch_with_push_sources(
    dir: &Path,
    declared: &str,
    secret: (&str, &str),
) -> (tokio::process::Child, String, server::store::Store) {
    let file = dir.join("push-sources.toml");
    std::fs::write(&file, declared).unwrap();
    let (child, base) = launch(
        dir,
        &[
            (
                "STEPLINE_WORKFLOWS",
                dir.join("no-definitions").display().to_string(),
            ),
            ("STEPLINE_PUSH_SOURCES", file.display().to_string()),
            (secret.0, secret.1.to_owned()),
        ],
    )
    .await;
    let store = server::store::Store::open(&database_url(dir))
        .await
        .unwrap();
    (child, base, store)
}

/// Reads the output of `child` (spawned with its stdout piped) until a line starts with
/// `prefix`; the rest of that line. What it prints later (Stepline's first password) is
/// read too: a closed pipe would fail its next print.
pub async fn output_after(child: &mut tokio::process::Child, prefix: &str) -> String {
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let rest = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("the process printed no line starting {prefix:?}"));
        if let Some(rest) = line.strip_prefix(prefix) {
            break rest.to_owned();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    rest
}

/// Where `child` (spawned with its stdout piped) says it starts: its base URL, printed
/// before its store is open.
pub async fn starting_at(child: &mut tokio::process::Child) -> String {
    let rest = output_after(child, "Stepline is starting: ").await;
    rest.split_whitespace().next().unwrap().to_owned()
}

/// A free loopback port (for a process told its address before it starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The database the binary uses in `dir`.
pub fn database_url(dir: &Path) -> String {
    format!("sqlite://{}/stepline.db", dir.display())
}
