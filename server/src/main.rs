//! The `stepline` binary: config → tracing → store → projector → hub → engines → router
//! → serve.
#![forbid(unsafe_code)]

use anyhow::Context;
use clap::Parser;
use server::config::{Config, LogFormat};
use server::engines::builtin::definition::load_dir;
use server::engines::builtin::{demo, Limits};
use server::BuiltinSettings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
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
    let temporal = match &config.temporal_sources {
        Some(path) => server::engines::temporal::load_sources(path).map_err(anyhow::Error::msg)?,
        None => Vec::new(),
    };
    let airflow = match &config.airflow_sources {
        Some(path) => server::engines::airflow::load_sources(path).map_err(anyhow::Error::msg)?,
        None => Vec::new(),
    };
    let pushing = match &config.push_sources {
        Some(path) => server::engines::commands::load_sources(path).map_err(anyhow::Error::msg)?,
        None => Vec::new(),
    };
    let alerting = match &config.alerts {
        Some(path) => server::alerts::settings::load_settings(path).map_err(anyhow::Error::msg)?,
        None => Default::default(),
    };
    let providers = match &config.sign_in_providers {
        Some(path) => server::auth::oidc::load_providers(path).map_err(anyhow::Error::msg)?,
        None => Vec::new(),
    };
    let server::Core { mut state, builtin } =
        server::start_core(&config.database_url, leptos_options, Some(builtin))
            .await
            .with_context(|| {
                format!(
                    "opening the store at {}",
                    server::store::without_password(&config.database_url)
                )
            })?;
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
        if let Some(engine) = builtin {
            tokio::spawn(demo::run(engine, demo::DemoSettings::default()));
        }
    }
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            Some(server::http::tls_settings(cert, key).map_err(anyhow::Error::msg)?)
        }
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
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
    let scheme = if tls.is_some() { "https" } else { "http" };
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

    let serving = server::http::Serving {
        limits: server::http::ConnectionLimits {
            max_connections: config.max_connections as usize,
            header_timeout: config.header_timeout.into(),
        },
        tls,
        trusted_proxies: config.trusted_proxies.clone(),
    };
    let (store, instance) = (state.store.clone(), state.instance.clone());
    server::launch(listener, state, serving, shutdown_signal()).await?;
    // Another instance takes over at once rather than when the leases run out; what this
    // one still writes under them is refused from now on.
    if let Err(error) = store.release_leases(&instance).await {
        tracing::warn!(%error, "cannot give the leases up; they run out by themselves");
    }
    Ok(())
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
