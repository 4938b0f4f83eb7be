//! One step of the run page's timeline (and of the Gantt chart's opened step): its
//! status, attempts, retry policy, input, output, logs and error, shown as text.

use super::state::PageState;
use crate::model::{
    attempt_label, format_duration, thousands, Attempt, FanOut, Step, StepKind, StepStatus, Waiting,
};
use crate::ui::clock::use_now;
use crate::ui::icons::{step_icon, IconView};
use crate::ui::time::{Time, TimeForm};
use leptos::prelude::*;
use std::sync::Arc;

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

#[component]
pub(super) fn StepItem(step: Step, label: Option<String>, state: PageState) -> AnyView {
    let number = step.step_number;
    let name_label = match &label {
        Some(label) => format!("{label} {}", step.name),
        None => format!("Step {number}: {}", step.name),
    };
    let max_attempts = step.retry_policy.as_ref().map(|p| p.max_attempts);
    let attempt_note = step
        .attempts
        .last()
        .filter(|a| a.attempt > 1)
        .map(|a| attempt_label(a.attempt, max_attempts));
    let compensation = step.kind == StepKind::Compensation;
    let class = format!(
        "step status-{}{}",
        step.status.as_str().to_ascii_lowercase(),
        if compensation { " compensation" } else { "" }
    );
    // The page decides whether a step is open (so it stays open across live re-reads);
    // without JavaScript the browser's own <details> toggling works.
    let toggle = move |ev: leptos::ev::MouseEvent| {
        ev.prevent_default();
        state.expanded.update(|set| {
            if !set.remove(&number) {
                set.insert(number);
            }
        });
    };
    let undoes = step.compensates.map(|n| format!("undoes step {n}"));
    let running = step.status == StepStatus::Running;
    view! {
        <li class=class id=format!("step-{number}") data-step=number data-status=step.status.as_str()>
            <details open=move || state.expanded.with(|set| set.contains(&number))>
                <summary on:click=toggle>
                    <IconView icon=step_icon(step.status) />
                    <span class="name">{name_label}</span>
                    <span class="step-status">{step.status.as_str()}</span>
                    {attempt_note.map(|note| view! { <span class="attempt-note">{note}</span> })}
                    <span class="step-duration">{step.duration_seconds.map(format_duration).unwrap_or_default()}</span>
                    {undoes.map(|u| view! { <span class="undoes">{u}</span> })}
                    {step.waiting.clone().map(|waiting| view! { <WaitingNote waiting /> })}
                </summary>
                <div class="step-body">
                    {step.error.clone().map(|error| view! {
                        <div class="field"><h4>"Error"</h4><pre class="error-text" data-testid="step-error">{error}</pre></div>
                    })}
                    {step.retry_policy.clone().map(|policy| view! {
                        <div class="field"><h4>"Retry policy"</h4><p data-testid="retry-policy">{policy.describe()}</p></div>
                    })}
                    {(!step.attempts.is_empty()).then(|| {
                        let attempts = step.attempts.clone();
                        let last = attempts.len();
                        view! { <AttemptsTable attempts last max_attempts /> }
                    })}
                    {step.input.as_ref().map(|input| view! {
                        <div class="field"><h4>"Input"</h4><pre class="json" data-testid="step-input">{pretty(input)}</pre></div>
                    })}
                    {step.output.as_ref().map(|output| view! {
                        <div class="field"><h4>"Output"</h4><pre class="json" data-testid="step-output">{pretty(output)}</pre></div>
                    })}
                    {(!step.logs.is_empty()).then(|| view! {
                        <div class="field">
                            <h4>{if running { "Logs (live tail)" } else { "Logs" }}</h4>
                            {(step.logs_dropped > 0).then(|| view! {
                                <p class="logs-dropped" data-testid="logs-dropped">
                                    {format!(
                                        "{} earlier lines dropped: a step keeps its newest 1 MiB of logs",
                                        step.logs_dropped,
                                    )}
                                </p>
                            })}
                            <pre class="logs" data-testid="step-logs">{step.logs.join("\n")}</pre>
                        </div>
                    })}
                </div>
            </details>
        </li>
    }
    // Its type erased: a step nests in branches and fan-outs, whose view types would
    // otherwise grow past what the compiler lays out.
    .into_any()
}

#[component]
fn AttemptsTable(attempts: Vec<Attempt>, last: usize, max_attempts: Option<u32>) -> impl IntoView {
    view! {
        <div class="field">
            <h4>"Attempts"</h4>
            <table class="attempts">
                <thead>
                    <tr><th>"Attempt"</th><th>"Status"</th><th>"Started"</th><th>"Duration"</th><th>"Error"</th></tr>
                </thead>
                <tbody>
                    {attempts
                        .into_iter()
                        .enumerate()
                        .map(|(i, attempt)| {
                            let final_failure = i + 1 == last && attempt.status == StepStatus::Failed;
                            let label = format!(
                                "{}{}",
                                attempt_label(attempt.attempt, max_attempts),
                                if final_failure { " (Final)" } else { "" }
                            );
                            view! {
                                <tr data-attempt=attempt.attempt>
                                    <td>{label}</td>
                                    <td>{attempt.status.as_str()}</td>
                                    <td>{attempt.started_at.map(|at| view! { <Time at form=TimeForm::Clock /> })}</td>
                                    <td>{attempt.duration_seconds.map(format_duration).unwrap_or_default()}</td>
                                    <td>{attempt.error.unwrap_or_default()}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// Siblings listed at a time when a fan-out is open (more on demand).
const FAN_OUT_SHOWN: usize = 100;

/// Where a sibling comes in an open fan-out: what needs looking at first.
fn attention(status: StepStatus) -> u8 {
    match status {
        StepStatus::Failed => 0,
        StepStatus::Running | StepStatus::Retrying => 1,
        StepStatus::Pending => 2,
        StepStatus::Cancelled => 3,
        StepStatus::Completed => 4,
        StepStatus::Skipped => 5,
    }
}

/// A big fan-out as one row ("1,000 × resize: 950 completed, 48 failed, 2 running");
/// opened, its siblings, failed and running first, a hundred at a time. Without
/// JavaScript it opens through its link (`?fan_out=N`).
#[component]
pub(super) fn FanOutItem(
    fan_out: FanOut,
    mut members: Vec<Step>,
    run_id: String,
    state: PageState,
) -> impl IntoView {
    let first = fan_out.first();
    let last = fan_out.members.last().copied().unwrap_or(first);
    let status = fan_out.status();
    let open = move || state.fan_outs_open.with(|set| set.contains(&first));
    let toggle = move |ev: leptos::ev::MouseEvent| {
        ev.prevent_default();
        state.fan_outs_open.update(|set| {
            if !set.remove(&first) {
                set.insert(first);
            }
        });
    };
    members.sort_by_key(|s| (attention(s.status), s.step_number));
    let total = members.len();
    // Neither the siblings nor how many are listed belong to this row's owner: a live
    // re-read disposes of the row, and a list being drawn at that moment must still read
    // them.
    let members = Arc::new(members);
    let listed = state.fan_outs_listed;
    let shown = move || listed.with(|n| n.get(&first).copied().unwrap_or(FAN_OUT_SHOWN));
    let listed_members = move || members.iter().take(shown()).cloned().collect::<Vec<_>>();
    let show_more = move |_| {
        listed.update(|n| *n.entry(first).or_insert(FAN_OUT_SHOWN) += FAN_OUT_SHOWN);
    };
    let link = format!("/orchestration/workflows/{run_id}?fan_out={first}#fan-out-{first}");
    let class = format!(
        "step fan-out status-{}",
        status.as_str().to_ascii_lowercase()
    );
    view! {
        <li class=class id=format!("fan-out-{first}") data-fan-out=first data-testid="fan-out" data-status=status.as_str()>
            <details open=open>
                <summary on:click=toggle>
                    <IconView icon=step_icon(status) />
                    <span class="name" data-testid="fan-out-summary">{fan_out.summary()}</span>
                    <span class="step-status">{format!("steps {first}–{last}")}</span>
                </summary>
                <div class="step-body">
                    <Show
                        when=open
                        fallback=move || view! { <a href=link.clone()>"Show each step"</a> }
                    >
                        <ol class="timeline fan-out-members">
                            <For
                                each=listed_members.clone()
                                key=|step| step.step_number
                                let:step
                            >
                                <StepItem step label=None state />
                            </For>
                        </ol>
                        {move || (shown() < total).then(|| view! {
                            <button type="button" class="more" on:click=show_more>
                                {format!("Show more ({} of {} shown)", thousands(shown()), thousands(total))}
                            </button>
                        })}
                    </Show>
                </div>
            </details>
        </li>
    }
}

/// "waiting for a timer · 0:12 left" (or "· for 3:05" when the engine did not say until
/// when), with what the engine says it waits for, counting with the clock.
#[component]
fn WaitingNote(waiting: Waiting) -> impl IntoView {
    let now = use_now();
    let (since, until) = (waiting.since, waiting.until);
    let how_long = move || {
        let now = now.get();
        match until {
            Some(until) => {
                let left = (until.timestamp_millis() as f64 - now) / 1000.0;
                format!("{} left", format_duration(left.max(0.0)))
            }
            None => format!(
                "for {}",
                format_duration(((now - since.timestamp_millis() as f64) / 1000.0).max(0.0))
            ),
        }
    };
    view! {
        <span class="waiting" data-testid="step-waiting" data-reason=waiting.reason.as_str()>
            <span>{format!("waiting for {}", waiting.reason.words())}</span>
            " · "
            <span class="waiting-time">{how_long}</span>
            {until.map(|at| view! { " (until " <Time at form=TimeForm::Clock /> ")" })}
            {waiting.detail.map(|detail| view! { " · " <span class="waiting-detail">{detail}</span> })}
        </span>
    }
}
