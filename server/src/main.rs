//! The `stepline` binary: config → tracing → store → projector → hub → engines → router
//! → serve.
#![forbid(unsafe_code)]

use anyhow::Context;
use clap::Parser;
use server::config::deployment::Deployment;
use server::config::{Command, Config, LogFormat};
use server::engines::builtin::definition::load_dir;
use server::engines::builtin::{demo, Limits};
use server::http::health::{Gate, Readiness};
use server::BuiltinSettings;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let given = Config::parse();
    if let Some(Command::CheckConfig { file }) = &given.command {
        std::process::exit(check_config(file));
    }
    // The configuration file's settings stand in for the built-in defaults; flags and
    // environment variables win over them.
    let (config, deployment) = match &given.config {
        Some(path) => {
            let deployment = read_deployment(path).map_err(|mistakes| {
                anyhow::anyhow!(
                    "the configuration file is not applied, as it has mistakes:\n{mistakes}"
                )
            })?;
            let config = Config::with_file_defaults(std::env::args_os(), &deployment.defaults)
                .unwrap_or_else(|error| error.exit());
            (config, deployment)
        }
        None => (given, Deployment::default()),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log).context("--log")?;
    match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_env_filter(filter)
            .init(),
    }

    let leptos_options = leptos::config::get_configuration(None)
        .context("reading the Leptos site settings")?
        .leptos_options;
    let addr = config.listen.unwrap_or(leptos_options.site_addr);

    let definitions = if config.workflows.is_dir() {
        load_dir(&config.workflows).context("loading workflow definitions")?
    } else {
        tracing::warn!(folder = %config.workflows.display(), "no workflow definitions folder: the built-in engine has no workflow types");
        Vec::new()
    };
    tracing::info!(
        types = ?definitions.iter().map(|d| d.workflow_type.as_str()).collect::<Vec<_>>(),
        "built-in engine definitions loaded"
    );
    let builtin = BuiltinSettings {
        definitions,
        limits: Limits {
            max_running: config.max_running as usize,
        },
        ..BuiltinSettings::default()
    };
    // A file of one kind given by flag (or variable) wins over the configuration file's
    // section of that kind.
    let temporal = match &config.temporal_sources {
        Some(path) => server::engines::temporal::load_sources(path).map_err(anyhow::Error::msg)?,
        None => deployment.temporal.unwrap_or_default(),
    };
    let airflow = match &config.airflow_sources {
        Some(path) => server::engines::airflow::load_sources(path).map_err(anyhow::Error::msg)?,
        None => deployment.airflow.unwrap_or_default(),
    };
    let pushing = match &config.push_sources {
        Some(path) => server::engines::commands::load_sources(path).map_err(anyhow::Error::msg)?,
        None => deployment.pushing.unwrap_or_default(),
    };
    let alerting = match &config.alerts {
        Some(path) => server::alerts::settings::load_settings(path).map_err(anyhow::Error::msg)?,
        None => deployment.alerts.unwrap_or_default(),
    };
    let providers = match &config.sign_in_providers {
        Some(path) => server::auth::oidc::load_providers(path).map_err(anyhow::Error::msg)?,
        None => deployment.sign_in.unwrap_or_default(),
    };
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            Some(server::http::tls_settings(cert, key).map_err(anyhow::Error::msg)?)
        }
        _ => None,
    };
    let serving = server::http::Serving {
        limits: server::http::ConnectionLimits {
            max_connections: config.max_connections as usize,
            header_timeout: config.header_timeout.into(),
        },
        tls: tls.clone(),
        trusted_proxies: config.trusted_proxies.clone(),
    };

    // Serving from the first moment: the probes answer (alive, not ready yet) while the
    // store opens, and a signal during start-up stops it cleanly.
    server::metrics::install();
    let readiness = Readiness::starting("opening the store");
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("Stepline is starting: {scheme}://{local} (/readyz answers when it is ready)");
    let stop = CancellationToken::new();
    let delay: std::time::Duration = config.shutdown_delay.into();
    tokio::spawn({
        let (stop, readiness) = (stop.clone(), readiness.clone());
        async move {
            shutdown_signal().await;
            readiness.stopping();
            if !delay.is_zero() {
                tracing::info!(
                    ?delay,
                    "not ready any more; serving on until the delay is up"
                );
                tokio::time::sleep(delay).await;
            }
            stop.cancel();
        }
    });
    let gate = Gate::new(readiness.clone());
    let served = tokio::spawn(server::http::serve(
        listener,
        gate.router(),
        serving,
        stop.clone().cancelled_owned(),
    ));

    let core = tokio::select! {
        core = open_core(&config, leptos_options, builtin, &readiness) => core?,
        () = stop.cancelled() => {
            served.await??;
            return Ok(());
        }
    };
    let server::Core { mut state, builtin } = core;
    state.readiness = readiness.clone();
    readiness.waiting_for("starting the engine sources");
    for provider in &providers {
        tracing::info!(provider = %provider.name, issuer = %provider.issuer, "single sign-on offered");
    }
    state.auth = std::sync::Arc::new(server::http::AuthRuntime {
        providers: server::auth::oidc::Providers::new(providers),
        ..Default::default()
    });
    for source in &pushing {
        tracing::info!(source = %source.name, delivery = source.delivery.name(), "taking commands for a pushing source");
    }
    server::command_pushing_sources(&state, pushing);
    for channel in &alerting.channels {
        tracing::info!(channel = %channel.name, kind = channel.reach.kind(), "sending alerts");
    }
    server::deliver_alerts(&state, alerting);
    server::command_declared_sources(&state)
        .await
        .context("reading the pushing sources admins declared")?;
    for source in server::follow_temporal(&mut state, temporal)
        .await
        .map_err(anyhow::Error::msg)?
    {
        tracing::info!(engine = source.engine_id(), "following Temporal");
    }
    for source in server::follow_airflow(&state, airflow).map_err(anyhow::Error::msg)? {
        tracing::info!(engine = source.engine_id(), "following Airflow");
    }
    tokio::spawn(server::retention::run(
        state.store.clone(),
        server::retention::RetentionSettings {
            runs: config.retain_runs.0,
            analytics: config.retain_analytics.0,
            ..Default::default()
        },
    ));
    if config.demo {
        if let Some(engine) = &builtin {
            tokio::spawn(demo::run(engine.clone(), demo::DemoSettings::default()));
        }
    }
    // The first start: an admin to sign in with.
    let data_dir = config
        .database_url
        .strip_prefix("sqlite://")
        .and_then(|path| std::path::Path::new(path).parent().map(ToOwned::to_owned));
    let given = std::env::var("STEPLINE_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    let first =
        server::auth::first_admin::ensure_first_admin(&state.store, data_dir.as_deref(), given)
            .await
            .context("making the first admin")?;
    gate.open(server::app(state.clone()));
    readiness.ready();
    let database = server::store::without_password(&config.database_url);
    tracing::info!(%database, "Stepline is serving on {scheme}://{local}/orchestration");
    println!("Stepline is running: {scheme}://{local}/orchestration");
    if let Some(first) = first {
        println!(
            "First start: sign in as {:?} with the password {}{}",
            first.login,
            first.password,
            first
                .file
                .map(|file| format!(" (also in {}, readable only by you)", file.display()))
                .unwrap_or_default()
        );
    }
    if !local.ip().is_loopback() && tls.is_none() && config.trusted_proxies.is_empty() {
        tracing::warn!(%local, "serving plain HTTP beyond this machine: passwords and session cookies cross the network readable; serve TLS (--tls-cert, --tls-key) or put Stepline behind a proxy that terminates it (--trusted-proxies)");
    }

    stop.cancelled().await;
    // Shutdown: no new connections; the requests in flight are answered, the live clients
    // told to reconnect elsewhere, and the built-in engine records where it stopped.
    let (served, all_closed) = tokio::join!(served, state.hub.close(SHUTDOWN_GRACE));
    served??;
    if !all_closed {
        tracing::warn!("live clients still connected after the shutdown grace period");
    }
    if let Some(engine) = &builtin {
        if let Some(running) = engine.stop().await {
            tracing::info!(
                running,
                "built-in engine stopped; its running steps run again when it resumes"
            );
        }
    }
    // Another instance takes over at once rather than when the leases run out; what this
    // one still writes under them is refused from now on.
    if let Err(error) = state.store.release_leases(&state.instance).await {
        tracing::warn!(%error, "cannot give the leases up; they run out by themselves");
    }
    tracing::info!("stopped");
    Ok(())
}

/// How long live clients get to be told goodbye once shutdown is asked for.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Opens the store (and starts the core on it), trying again while the database is busy,
/// unreachable or starting; a mistake (a bad URL, a failed migration) ends start-up.
async fn open_core(
    config: &Config,
    leptos_options: leptos::config::LeptosOptions,
    builtin: BuiltinSettings,
    readiness: &Readiness,
) -> anyhow::Result<server::Core> {
    let database = server::store::without_password(&config.database_url);
    let mut backoff = server::retry::Backoff::new(
        std::time::Duration::from_millis(250),
        std::time::Duration::from_secs(10),
    );
    loop {
        match server::start_core(
            &config.database_url,
            leptos_options.clone(),
            Some(builtin.clone()),
        )
        .await
        {
            Ok(core) => return Ok(core),
            Err(server::StartError::Store(error)) if error.is_transient() => {
                let cause = app::model::error_chain(&error);
                tracing::warn!(%database, %cause, "cannot open the store yet; trying again");
                readiness.waiting_for(&format!("opening the store: {cause}"));
                backoff.wait().await;
            }
            Err(error) => {
                return Err(error).with_context(|| format!("opening the store at {database}"))
            }
        }
    }
}
/// Reads the configuration file at `path`: what it sets, or every mistake in it (one a
/// line, each with the file, line and key).
fn read_deployment(path: &std::path::Path) -> Result<Deployment, String> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        format!(
            "cannot read the configuration file {}: {error}",
            path.display()
        )
    })?;
    server::config::deployment::read(&text, &server::config::file::process_env)
        .map_err(|problems| server::config::file::report(&path.display().to_string(), &problems))
}

/// `stepline check-config FILE`: every mistake, one a line, and the exit code.
fn check_config(path: &std::path::Path) -> i32 {
    match read_deployment(path) {
        Ok(deployment) => {
            println!(
                "{}: no mistakes ({} settings; {} Temporal, {} Airflow and {} pushing sources; {} sign-in providers; {} alert channels)",
                path.display(),
                deployment.defaults.len(),
                deployment.temporal.map_or(0, |s| s.len()),
                deployment.airflow.map_or(0, |s| s.len()),
                deployment.pushing.map_or(0, |s| s.len()),
                deployment.sign_in.map_or(0, |s| s.len()),
                deployment.alerts.map_or(0, |a| a.channels.len()),
            );
            0
        }
        Err(report) => {
            eprintln!("{report}");
            1
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
