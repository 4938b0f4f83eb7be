//! The alert inbox (`/orchestration/alerts?state=firing|resolved|all`): what needs an
//! operator, newest first, each with its run, acknowledged or muted from here (plain
//! forms: they work with JavaScript off); the header's live badge of open alerts; and a
//! run's own alerts on its page. Everything an alert says of its run is shown as text.

use super::parts::{encode_component, ErrorView};
use super::time::Time;
use super::LiveConnection;
use crate::api::{list_alerts, AcknowledgeAlert, MuteAlert};
use crate::model::alert::{open_badge, Alert, AlertQuery, AlertState};
use crate::model::{ErrorBody, ErrorKind};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// How long the inbox's mute button mutes a condition for its workflow type.
const MUTE_MINUTES: u32 = 60;

/// The header's link to the inbox, with how many alerts are open (read after the page
/// loads and again, at most once a second, as alerts change).
#[component]
pub fn AlertBadge() -> impl IntoView {
    let live = expect_context::<LiveConnection>();
    let count = move || {
        live.open_alerts.get().filter(|open| *open > 0).map(|open| {
            view! { <span class="badge" data-testid="alert-count">{open_badge(open)}</span> }
        })
    };
    view! {
        <a
            href="/orchestration/alerts"
            class="alerts-link"
            data-testid="alerts-link"
            aria-label=move || match live.open_alerts.get() {
                Some(open) if open > 0 => format!("Alerts {} open", open_badge(open)),
                _ => "Alerts".to_owned(),
            }
        >
            // The name read out holds the words shown ("Alerts 2"), then says what the
            // number is.
            "Alerts "
            {count}
        </a>
    }
}

/// Which alerts the address asks for.
fn query_of(get: impl Fn(&str) -> Option<String>) -> Result<AlertQuery, String> {
    let state = match get("state").as_deref().map(str::trim) {
        None | Some("") | Some("firing") => AlertState::Firing,
        Some("resolved") => AlertState::Resolved,
        Some("all") => AlertState::All,
        Some(other) => return Err(format!("state: {other:?} is not firing, resolved or all")),
    };
    let before = match get("before")
        .map(|b| b.trim().to_owned())
        .filter(|b| !b.is_empty())
    {
        Some(before) => Some(
            before
                .parse::<i64>()
                .map_err(|_| format!("before: {before:?} is not an alert number"))?,
        ),
        None => None,
    };
    Ok(AlertQuery {
        state,
        before,
        ..AlertQuery::default()
    })
}

#[component]
pub fn AlertInboxPage() -> impl IntoView {
    let live = expect_context::<LiveConnection>();
    let params = use_query_map();
    let query = Memo::new(move |_| params.with(|p| query_of(|key| p.get(key))));
    let acknowledge = ServerAction::<AcknowledgeAlert>::new();
    let mute = ServerAction::<MuteAlert>::new();
    let page = Resource::new(
        move || {
            (
                query.get(),
                live.alert_changes.get(),
                acknowledge.version().get(),
                mute.version().get(),
            )
        },
        |(query, ..)| async move {
            match query {
                Ok(query) => list_alerts(query).await,
                Err(message) => Err(ErrorBody::new(ErrorKind::BadRequest, message)),
            }
        },
    );
    let state = move || query.get().map(|q| q.state).unwrap_or_default();
    let tab = move |which: AlertState, label: &'static str| {
        view! {
            <a
                href=format!("/orchestration/alerts?state={}", which.as_str())
                class=move || if state() == which { "tab active" } else { "tab" }
                aria-current=move || (state() == which).then_some("page")
                data-testid=format!("alerts-tab-{}", which.as_str())
            >
                {label}
            </a>
        }
    };
    let failed = move || {
        [acknowledge.value().get(), mute.value().get()]
            .into_iter()
            .flatten()
            .find_map(Result::err)
            .map(|error| view! { <p class="notice error" role="alert" data-testid="alert-notice">{error.message}</p> })
    };
    view! {
        <section class="alert-inbox">
            <h1>"Alerts"</h1>
            <nav class="tabs" aria-label="Alerts">
                {tab(AlertState::Firing, "Firing")}
                {tab(AlertState::Resolved, "Resolved")}
                {tab(AlertState::All, "All")}
            </nav>
            {failed}
            <Transition fallback=|| view! { <p class="loading">"Reading the alerts…"</p> }>
                {move || Suspend::new(async move {
                    match page.await {
                        Ok(found) => {
                            let open = found.open;
                            let older = found.next_before.map(|before| {
                                format!("/orchestration/alerts?state={}&before={before}", state().as_str())
                            });
                            let rows = found.alerts;
                            view! {
                                <p class="muted" data-testid="alerts-open">
                                    {format!("{} open (holding, not acknowledged, not muted)", open_badge(open))}
                                </p>
                                {if rows.is_empty() {
                                    view! { <p class="empty" data-testid="no-alerts">"No alerts here."</p> }.into_any()
                                } else {
                                    view! {
                                        <table class="workflow-table alert-table">
                                            <thead>
                                                <tr>
                                                    <th>"Condition"</th>
                                                    <th>"Run"</th>
                                                    <th>"What happened"</th>
                                                    <th>"Fired"</th>
                                                    <th>"State"</th>
                                                    <th>"Taken in hand"</th>
                                                </tr>
                                            </thead>
                                            <tbody>
                                                {rows.into_iter().map(|alert| view! { <AlertRow alert acknowledge mute /> }).collect_view()}
                                            </tbody>
                                        </table>
                                    }.into_any()
                                }}
                                {older.map(|href| view! { <p><a href=href data-testid="older-alerts">"Older alerts"</a></p> })}
                            }
                            .into_any()
                        }
                        Err(error) => view! { <ErrorView what="Could not read the alerts" error /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// The run an alert is about, as a link.
fn run_link(alert: &Alert) -> Option<impl IntoView> {
    alert.workflow_id.clone().map(|id| {
        let href = format!("/orchestration/workflows/{}", encode_component(&id));
        view! { <a class="id" href=href>{id}</a> }
    })
}

/// One alert's row with its buttons.
#[component]
fn AlertRow(
    alert: Alert,
    acknowledge: ServerAction<AcknowledgeAlert>,
    mute: ServerAction<MuteAlert>,
) -> impl IntoView {
    let now = chrono::Utc::now();
    let muted = alert.muted_until.filter(|until| *until > now);
    let state = match alert.resolved_at {
        Some(resolved) => view! { "resolved " <Time at=resolved /> }.into_any(),
        None => view! { <strong>"firing"</strong> }.into_any(),
    };
    let handled = match (&alert.acknowledged_by, alert.acknowledged_at) {
        (Some(by), Some(at)) => view! {
            <span data-testid="acknowledged">"acknowledged by " {by.clone()} " at " <Time at=at /></span>
        }
        .into_any(),
        _ => view! {
            <ActionForm action=acknowledge attr:class="inline-form">
                <input type="hidden" name="id" value=alert.id.to_string() />
                <button type="submit" data-testid="acknowledge">"Acknowledge"</button>
            </ActionForm>
        }
        .into_any(),
    };
    let scope = alert
        .workflow_type
        .clone()
        .unwrap_or_else(|| alert.engine.clone());
    let (minutes, mute_label) = match muted {
        Some(_) => (0, "Unmute".to_owned()),
        None => (MUTE_MINUTES, format!("Mute for {scope}, 1 h")),
    };
    let muted_line = muted.map(|until| view! { <span class="muted" data-testid="muted">" muted until " <Time at=until /></span> });
    view! {
        <tr
            class=format!("alert {}", alert.condition.as_str())
            data-testid="alert-row"
            data-condition=alert.condition.as_str()
            data-state=if alert.resolved_at.is_some() { "resolved" } else { "firing" }
        >
            <td class="alert-condition">{alert.condition.label()}</td>
            <td>{run_link(&alert)}</td>
            <td class="alert-summary">{alert.summary.clone()}</td>
            <td><Time at=alert.fired_at /></td>
            <td>{state}</td>
            <td>
                {handled}
                <ActionForm action=mute attr:class="inline-form">
                    <input type="hidden" name="id" value=alert.id.to_string() />
                    <input type="hidden" name="minutes" value=minutes.to_string() />
                    <button type="submit" class="secondary" data-testid="mute">{mute_label}</button>
                </ActionForm>
                {muted_line}
            </td>
        </tr>
    }
}

/// Run `id`'s alerts on its page (holding and cleared), with a link to the inbox;
/// nothing when it has none.
#[component]
pub fn RunAlerts(id: String) -> impl IntoView {
    let live = expect_context::<LiveConnection>();
    // Shared, not kept by this component: a live re-read disposes of it while its
    // Transition may still be waiting for this read.
    let alerts = ArcResource::new(
        move || (id.clone(), live.alert_changes.get()),
        |(id, _)| {
            list_alerts(AlertQuery {
                state: AlertState::All,
                workflow_id: Some(id),
                limit: Some(20),
                before: None,
            })
        },
    );
    let line = |alert: Alert| {
        let state = if alert.resolved_at.is_some() {
            "resolved"
        } else {
            "firing"
        };
        view! {
            <li class=format!("alert {state}") data-testid="run-alert" data-condition=alert.condition.as_str() data-state=state>
                <span class="alert-condition">{alert.condition.label()}</span>
                " — " {state} " — fired " <Time at=alert.fired_at />
                {alert.acknowledged_by.clone().map(|by| view! { " — acknowledged by " {by} })}
            </li>
        }
    };
    view! {
        <Transition fallback=|| ()>
            {move || {
                let alerts = alerts.clone();
                Suspend::new(async move {
                    match alerts.await {
                        Ok(page) if !page.alerts.is_empty() => Some(view! {
                            <section class="run-alerts" aria-label="Alerts">
                                <h2>"Alerts"</h2>
                                <ul>{page.alerts.into_iter().map(line).collect_view()}</ul>
                                <p><a href="/orchestration/alerts?state=all">"All alerts"</a></p>
                            </section>
                        }),
                        _ => None,
                    }
                })
            }}
        </Transition>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<AlertQuery, String> {
        query_of(crate::ui::parts::address_of(pairs))
    }

    #[test]
    fn the_address_reads_as_the_apis_query() {
        assert_eq!(from(&[]).unwrap().state, AlertState::Firing);
        assert_eq!(
            from(&[("state", "resolved")]).unwrap().state,
            AlertState::Resolved
        );
        let all = from(&[("state", "all"), ("before", "42")]).unwrap();
        assert_eq!((all.state, all.before), (AlertState::All, Some(42)));
        assert!(from(&[("state", "open")]).unwrap_err().contains("state"));
        assert!(from(&[("before", "x")]).unwrap_err().contains("before"));
    }
}
