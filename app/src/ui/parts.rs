//! Pieces every page shows the same way: a run's status and SLA badges, its progress
//! bar, its duration ticking live while it runs, and why a page could not be shown.

use super::clock::use_now;
use super::icons::{status_icon, IconView};
use super::preferences::use_preferences;
use super::time::{absolute_time, Time, TimeForm};
use crate::model::{
    format_duration, BreachOutlook, ErrorBody, Forecast, Progress, SlaStatus, WorkflowStatus,
    MIN_RUNS_FOR_FORECAST,
};
use chrono::{DateTime, Utc};
use leptos::prelude::*;

/// A run's status: icon and name, coloured by status.
#[component]
pub fn StatusBadge(
    status: WorkflowStatus,
    #[prop(optional)] testid: Option<&'static str>,
) -> impl IntoView {
    let class = format!("badge status-{}", status.as_str().to_ascii_lowercase());
    view! {
        <span class=class data-testid=testid>
            <IconView icon=status_icon(status) /> " " {status.as_str()}
        </span>
    }
}

/// A run's SLA status ("on track", "at risk", "breached", ...).
#[component]
pub fn SlaBadge(sla: SlaStatus) -> impl IntoView {
    view! {
        <span class=format!("badge sla-{}", sla.as_str())>
            {sla.as_str().replace('_', " ")}
        </span>
    }
}

/// How a known forecast stands against its run's SLA target ("likely breach").
pub fn breach_words(forecast: &Forecast) -> Option<&'static str> {
    match forecast.breach {
        BreachOutlook::Likely => Some("likely breach"),
        BreachOutlook::Possible => Some("possible breach"),
        BreachOutlook::Unlikely => None,
    }
}

/// Why a run has no forecast: "too little history (2 earlier runs, 5 needed)".
pub fn no_forecast_words(forecast: &Forecast) -> String {
    format!(
        "too little history ({} earlier run{}, {} needed)",
        forecast.runs_seen,
        if forecast.runs_seen == 1 { "" } else { "s" },
        MIN_RUNS_FOR_FORECAST
    )
}

/// A running run's expected end for the list: "12:07:10" (its likely-latest on hover),
/// marked when its SLA target is likely or possibly missed.
#[component]
pub fn ForecastCell(forecast: Option<Forecast>, status: WorkflowStatus) -> impl IntoView {
    let forecast = forecast.filter(|_| status == WorkflowStatus::Running);
    let Some(forecast) = forecast else {
        return view! { <span class="forecast none">"–"</span> }.into_any();
    };
    let preferences = use_preferences();
    let title = match forecast.likely_by {
        Some(likely_by) => Signal::derive(move || {
            format!(
                "likely by {}",
                absolute_time(likely_by, TimeForm::DateTime, preferences.zone_shown())
            )
        }),
        None => Signal::stored(no_forecast_words(&forecast)),
    };
    let breach = forecast.expected_at.and(breach_words(&forecast));
    let class = format!("forecast breach-{}", forecast.breach.as_str());
    view! {
        <span class=class title=title data-testid="forecast" data-breach=forecast.breach.as_str()>
            {match forecast.expected_at {
                Some(expected) => view! { <Time at=expected form=TimeForm::Clock /> }.into_any(),
                None => "no history".into_any(),
            }}
            {breach.map(|breach| view! { " " <span class="badge forecast-breach">{breach}</span> })}
        </span>
    }
    .into_any()
}

/// A run's progress: the bar and "7/15 (47%)", or with `label` "Step 7/15 (47%)".
#[component]
pub fn ProgressBar(
    progress: Progress,
    #[prop(optional)] label: Option<&'static str>,
    #[prop(optional)] testid: Option<&'static str>,
) -> impl IntoView {
    let text = format!(
        "{}{}/{} ({}%)",
        label.map(|l| format!("{l} ")).unwrap_or_default(),
        progress.current_step,
        progress.total_steps,
        progress.percent
    );
    view! {
        <progress max=progress.total_steps.max(1) value=progress.current_step></progress>
        <span class="progress-text" data-testid=testid>{text}</span>
    }
}

/// Why a page (or its main part) could not be shown. Rendered on the server, the page
/// answers with the status the error stands for (400 for a bad filter, 503 when the
/// store is out of reach, ...), so a script or a monitor reading the page sees it too.
#[component]
pub fn ErrorView(
    /// What could not be done: "Could not load workflows".
    what: &'static str,
    error: ErrorBody,
) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        if let Ok(status) = http::StatusCode::from_u16(error.kind().status()) {
            response.set_status(status);
        }
    }
    view! {
        <p class="error" role="alert" data-error=error.error.clone()>
            {what} ": " {error.message.clone()}
        </p>
    }
}

/// How long a run has lasted at `now` (ms): while it ticks, from its start (never less
/// than the server said); otherwise what the server said.
fn live_seconds(seconds: f64, started_at: Option<DateTime<Utc>>, ticking: bool, now: f64) -> f64 {
    match started_at {
        Some(start) if ticking => {
            let since = (now - start.timestamp_millis() as f64) / 1000.0;
            since.max(seconds)
        }
        _ => seconds,
    }
}

/// A run's duration as text, moving on every second while `ticking`.
#[component]
pub fn LiveDuration(
    seconds: f64,
    started_at: Option<DateTime<Utc>>,
    ticking: bool,
) -> impl IntoView {
    let now = use_now();
    move || format_duration(live_seconds(seconds, started_at, ticking, now.get()))
}

#[cfg(test)]
mod tests {
    use super::live_seconds;
    use chrono::{TimeZone, Utc};

    #[test]
    fn a_running_runs_duration_moves_with_the_clock_and_an_ended_one_does_not() {
        let start = Utc.timestamp_millis_opt(10_000).unwrap();
        assert_eq!(live_seconds(3.0, Some(start), true, 25_000.0), 15.0);
        // The server's figure wins while the browser's clock is behind.
        assert_eq!(live_seconds(20.0, Some(start), true, 25_000.0), 20.0);
        assert_eq!(live_seconds(3.0, Some(start), false, 25_000.0), 3.0);
        assert_eq!(live_seconds(3.0, None, true, 25_000.0), 3.0);
    }
}

/// Percent-encodes a query-string value.
pub(crate) fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A page's address as `(key, value)` pairs, looked up as the page reads its query (tests).
#[cfg(test)]
pub fn address_of<'a>(pairs: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |key| {
        pairs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| (*v).to_owned())
    }
}
