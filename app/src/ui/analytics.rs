//! `/orchestration/analytics?period=24h`: how the fleet did — SLA compliance (gauge),
//! mean and p95 duration by type (bars), failure rate overall and by type (pie), the
//! slowest steps, and the steps that retry most. Server-rendered; the period is in the
//! URL.

use super::icons::{Icon, IconView};
use super::parts::ErrorView;
use super::time::Time;
use crate::api::get_analytics;
use crate::model::analytics::{Analytics, Period, Window};
use crate::model::{format_duration, ErrorBody, ErrorKind};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

#[component]
pub fn AnalyticsPage() -> impl IntoView {
    let params = use_query_map();
    let window = Memo::new(move |_| {
        params.with(|p| {
            let pairs: Vec<(&str, String)> = ["period", "from", "to"]
                .into_iter()
                .filter_map(|key| p.get(key).map(|value| (key, value)))
                .collect();
            Window::from_params(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        })
    });
    let analytics = Resource::new(
        move || window.get(),
        |window| async move {
            match window {
                Ok(window) => get_analytics(window).await,
                Err(message) => Err(ErrorBody::new(ErrorKind::BadRequest, message)),
            }
        },
    );
    view! {
        <section class="analytics">
            <h1><IconView icon=Icon::Chart /> " Workflow analytics"</h1>
            <nav class="tabs" aria-label="Period">
                {Period::ALL
                    .into_iter()
                    .map(|p| {
                        let selected = move || window.get() == Ok(Window::Period(p));
                        view! {
                            <a
                                href=format!("/orchestration/analytics?period={}", p.as_str())
                                class=move || if selected() { "tab active" } else { "tab" }
                                aria-current=move || selected().then_some("page")
                                data-period=p.as_str()
                            >
                                {p.label()}
                            </a>
                        }
                    })
                    .collect_view()}
            </nav>
            {move || match window.get() {
                Ok(Window::Range { from, to }) => {
                    Some(view! {
                        <p class="muted" data-testid="range">
                            "From " <Time at=from />
                            " to " {match to {
                                Some(to) => view! { <Time at=to /> }.into_any(),
                                None => "now".into_any(),
                            }}
                        </p>
                    })
                }
                _ => None,
            }}
            <Suspense fallback=|| view! { <p class="loading">"Computing…"</p> }>
                {move || Suspend::new(async move {
                    match analytics.await {
                        Ok(figures) if figures.runs == 0 => view! {
                            <p class="empty" data-testid="no-runs">"No run ended in this period yet."</p>
                        }
                        .into_any(),
                        Ok(figures) => view! { <Figures figures /> }.into_any(),
                        Err(error) => view! {
                            <ErrorView what="Could not compute analytics" error />
                        }
                        .into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn Figures(figures: Analytics) -> impl IntoView {
    let compliance = figures.sla_compliance.clone();
    let longest = figures
        .p95_duration_by_type
        .values()
        .chain(figures.avg_duration_by_type.values())
        .copied()
        .max()
        .unwrap_or(1)
        .max(1);
    let failure = figures.failure_rate.clone();
    view! {
        <p class="stats" data-testid="runs-ended">{figures.runs} " runs ended"</p>
        <div class="cards">
            <div class="card">
                <h2>"SLA compliance"</h2>
                <div
                    class="gauge"
                    style=format!("--p: {}", compliance.percent.unwrap_or(0))
                    role="img"
                    aria-label="SLA compliance"
                >
                    <span data-testid="sla-percent">
                        {compliance.percent.map_or("–".to_owned(), |p| format!("{p}%"))}
                    </span>
                </div>
                <p class="muted">
                    {compliance.on_track} " within target • " {compliance.breached} " breached"
                </p>
            </div>
            <div class="card">
                <h2>"Failure rate"</h2>
                <div class="pie" style=format!("--p: {}", failure.overall) role="img" aria-label="Failure rate">
                    <span data-testid="failure-overall">{format!("{}%", failure.overall)}</span>
                </div>
                <ul class="plain">
                    {failure
                        .by_type
                        .into_iter()
                        .map(|(workflow_type, rate)| view! {
                            <li data-type=workflow_type.clone()>{workflow_type.clone()} ": " {format!("{rate}%")}</li>
                        })
                        .collect_view()}
                </ul>
            </div>
            <div class="card wide">
                <h2>"Duration by type (mean, p95)"</h2>
                <ul class="bars">
                    {figures
                        .avg_duration_by_type
                        .iter()
                        .map(|(workflow_type, mean)| {
                            let p95 = figures.p95_duration_by_type.get(workflow_type).copied().unwrap_or(*mean);
                            view! {
                                <li data-type=workflow_type.clone()>
                                    <span class="bar-label">{workflow_type.clone()}</span>
                                    <span class="bar-track">
                                        <span class="bar p95" style=format!("width: {}%", p95 * 100 / longest)></span>
                                        <span class="bar mean" style=format!("width: {}%", mean * 100 / longest)></span>
                                    </span>
                                    <span class="bar-value" data-testid="avg-duration" data-seconds=*mean>
                                        {format_duration(*mean as f64)}
                                    </span>
                                    <span class="bar-value muted">{format!("p95 {}", format_duration(p95 as f64))}</span>
                                </li>
                            }
                        })
                        .collect_view()}
                </ul>
            </div>
        </div>
        <h2>"Slowest steps"</h2>
        <table class="workflow-table" data-testid="slowest-steps">
            <thead>
                <tr><th>"#"</th><th>"Step"</th><th>"Type"</th><th>"Mean"</th><th>"p95"</th><th>"Runs"</th></tr>
            </thead>
            <tbody>
                {figures
                    .slowest_steps
                    .into_iter()
                    .enumerate()
                    .map(|(i, step)| view! {
                        <tr>
                            <td>{i + 1}</td>
                            <td>{step.step_name}</td>
                            <td>{step.workflow_type}</td>
                            <td>{format_duration(step.avg_duration_seconds)}</td>
                            <td>{format_duration(step.p95_duration_seconds)}</td>
                            <td>{step.occurrences}</td>
                        </tr>
                    })
                    .collect_view()}
            </tbody>
        </table>
        <h2>"Retries"</h2>
        <p data-testid="retry-overall">{format!("{}% of step runs needed a retry", figures.retry_rate.overall)}</p>
        <ul class="bars">
            {figures
                .retry_rate
                .top_steps
                .into_iter()
                .map(|step| view! {
                    <li>
                        <span class="bar-label">{format!("{} ({})", step.step_name, step.workflow_type)}</span>
                        <span class="bar-track">
                            <span class="bar retry" style=format!("width: {}%", step.retry_rate)></span>
                        </span>
                        <span class="bar-value">{format!("{}%", step.retry_rate)}</span>
                    </li>
                })
                .collect_view()}
        </ul>
    }
}
