//! `/orchestration/workflows/:id`: one run — header with progress, duration against SLA
//! and the actions its engine allows; the step timeline with attempts, input, output,
//! logs and errors; parallel branches side by side; the rollback (C1, C2, ...). It is
//! rendered on the server and re-read whenever the live connection reports the run
//! changed. Everything the workflow produced is shown as text, never as HTML.

mod gantt;
mod state;
mod step;

use super::icons::{Icon, IconView};
use super::live::{ConnectionState, LiveConnection};
use super::parts::{ErrorView, LiveDuration, ProgressBar, SlaBadge, StatusBadge};
use super::time::{Time, TimeForm};
use crate::api::get_workflow;
use crate::model::identity::{AuditEntry, Grants, Role};
use crate::model::{
    fan_outs, format_duration, Action, CommandState, EngineCommand, FanOut, SlaStatus, Step,
    StepKind, StepStatus, Subscription, WorkflowDetail, WorkflowStatus,
};
use gantt::GanttPanel;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use state::{Dialog, PageState};
use std::collections::HashMap;
use step::{FanOutItem, StepItem};

/// Steps shown per page of a long timeline.
const STEPS_PER_PAGE: usize = 100;
/// Beyond this many branches, the branch block starts collapsed.
const BRANCHES_SHOWN_OPEN: usize = 5;

/// Which view of the steps the page shows (`?view=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepsView {
    Timeline,
    Gantt,
}

#[component]
pub fn WorkflowDetailPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.with(|p| p.get("id").unwrap_or_default()));
    let live = expect_context::<LiveConnection>();
    // The socket follows this run only while its page is on screen.
    Effect::new(move |_| {
        live.follow(Subscription {
            workflow_ids: vec![id.get()],
            ..Subscription::default()
        })
    });
    // Re-read when the live summary of this run changes, and on every (re)connect, so
    // nothing that happened while the socket was down is missed.
    let version = Memo::new(move |_| {
        live.workflows
            .with(|rows| rows.get(&id.get()).and_then(|w| w.updated_at))
    });
    let connected = Memo::new(move |_| live.state.get() == ConnectionState::Connected);
    let detail = Resource::new(
        move || (id.get(), version.get(), connected.get()),
        |(id, _, _)| get_workflow(id),
    );
    // `?step=N` (where the Gantt chart's links lead) opens that step.
    let query = use_query_map();
    let asked_step = query.with_untracked(|q| q.get("step").and_then(|s| s.parse::<u32>().ok()));
    // `?confirm=cancel` (where a dialog's button leads without JavaScript) opens it.
    let asked_dialog =
        query.with_untracked(|q| q.get("confirm").and_then(|c| Dialog::from_query(&c)));
    // `?fan_out=N` (where a fan-out's link leads without JavaScript) opens that fan-out.
    let asked_fan_out =
        query.with_untracked(|q| q.get("fan_out").and_then(|s| s.parse::<u32>().ok()));
    let state = PageState {
        expanded: RwSignal::new(asked_step.into_iter().collect()),
        action: ServerAction::new(),
        dialog: RwSignal::new(asked_dialog),
        dialog_reason: RwSignal::new(None),
        gantt_scroll: RwSignal::new(0.0),
        gantt_drawn: RwSignal::new(false),
        gantt_selected: RwSignal::new(asked_step),
        gantt_norms: RwSignal::new(None),
        fan_outs_open: RwSignal::new(asked_fan_out.into_iter().collect()),
        fan_outs_listed: RwSignal::new(HashMap::new()),
    };
    // A dialog closes once its action is on its way.
    Effect::new(move |_| {
        if state.action.pending().get() {
            state.dialog.set(None);
        }
    });

    view! {
        <section class="detail">
            <p class="back">
                <a href="/orchestration">"← All workflows"</a>
            </p>
            <Transition fallback=|| view! { <p class="loading">"Loading the workflow…"</p> }>
                {move || Suspend::new(async move {
                    let me = super::signed_in().await;
                    match detail.await {
                        Ok(Some(run)) => {
                            let may_operate = me.is_some_and(|me| me.holds_on(Role::Operator, &run.engine));
                            view! { <RunView run state may_operate /> }.into_any()
                        }
                        Ok(None) => {
                            #[cfg(feature = "ssr")]
                            if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                                response.set_status(http::StatusCode::NOT_FOUND);
                            }
                            view! {
                                <div class="empty" data-testid="not-found">
                                    <h1>"Workflow not found"</h1>
                                    <p>"No engine has reported a workflow with this id."</p>
                                </div>
                            }
                                .into_any()
                        }
                        Err(error) => {
                            view! { <ErrorView what="Could not load the workflow" error /> }
                                .into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn RunView(run: WorkflowDetail, state: PageState, may_operate: bool) -> impl IntoView {
    let status = run.status;
    let active = status.is_active() || status == WorkflowStatus::Pending;
    let duration = view! {
        <LiveDuration
            seconds=run.execution.duration_seconds
            started_at=run.execution.started_at
            ticking=active
        />
    };
    let sla_target = run.definition.sla_target_seconds;
    let progress = run.progress;
    let banner = match run.sla_status {
        SlaStatus::AtRisk => Some((
            "sla-banner at-risk",
            "This workflow has used 90% of its SLA target.".to_owned(),
        )),
        SlaStatus::Breached => Some((
            "sla-banner breached",
            "This workflow has exceeded its SLA target.".to_owned(),
        )),
        _ => None,
    };
    let forecast = run
        .forecast
        .clone()
        .filter(|_| status == WorkflowStatus::Running);
    let sla_deadline = run
        .execution
        .started_at
        .zip(sla_target)
        .map(|(started, target)| started + chrono::Duration::seconds(target));
    let reason = run.status_reason.clone();
    let id = run.id.clone();
    let query = use_query_map();
    let steps_view = Memo::new(move |_| {
        query.with(|q| match q.get("view").as_deref() {
            Some("gantt") => StepsView::Gantt,
            _ => StepsView::Timeline,
        })
    });
    let tab = move |view: StepsView, href: String, icon: Option<Icon>, label: &'static str| {
        view! {
            <a
                href=href
                role="tab"
                aria-selected=move || (steps_view.get() == view).to_string()
                aria-current=move || (steps_view.get() == view).then_some("page")
            >
                {icon.map(|icon| view! { <IconView icon /> " " })}
                {label}
            </a>
        }
    };
    let steps = {
        let run = run.clone();
        move || match steps_view.get() {
            StepsView::Timeline => view! { <Timeline run=run.clone() state /> }.into_any(),
            StepsView::Gantt => view! { <GanttPanel run=run.clone() state /> }.into_any(),
        }
    };
    view! {
        <header class="run-header">
            <h1>
                <span class="id" data-testid="workflow-id">{run.id.clone()}</span>
                <StatusBadge status testid="workflow-status" />
            </h1>
            <p class="run-meta">
                <span>{run.workflow_type.clone()}</span>
                " • "
                <span>{run.engine.clone()}</span>
                {run.metadata.engine_ref.clone().map(|r| view! {
                    " • " <span class="engine-ref" data-testid="engine-ref" title="This run in its engine">{r}</span>
                })}
                {run.definition.version.clone().map(|v| view! { " • " <span>"v" {v}</span> })}
                " • "
                <span>{run.metadata.priority.as_str()}</span>
                {run.metadata.triggered_by.clone().map(|t| view! { " • triggered by " <span>{t}</span> })}
                {run.execution.started_at.map(|at| view! { " • started " <Time at testid="started-at" /> })}
            </p>
            <div class="run-figures">
                <div class="progress">
                    <ProgressBar progress label="Step" testid="progress" />
                </div>
                <div class="duration" data-testid="duration">
                    {duration}
                    {sla_target.map(|target| format!(" of {} SLA", format_duration(target as f64)))}
                </div>
                <SlaBadge sla=run.sla_status />
            </div>
            {forecast.map(|forecast| view! { <ForecastLine forecast sla_deadline /> })}
            {banner.map(|(class, text)| view! { <p class=class role="status" data-testid="sla-banner">{text}</p> })}
            {reason.map(|reason| view! { <p class="status-reason" data-testid="status-reason">{reason}</p> })}
        </header>
        {if may_operate {
            view! { <ActionsBar run=run.clone() state /> }.into_any()
        } else {
            view! {
                <p class="no-actions" data-testid="read-only">
                    "You can read this run; acting on it needs the operator role on "
                    {run.engine.clone()} "."
                </p>
            }
                .into_any()
        }}
        <NoticeLine state />
        <nav class="view-tabs" role="tablist" aria-label="Views of the steps">
            {tab(StepsView::Timeline, format!("/orchestration/workflows/{id}"), None, "Timeline")}
            {tab(StepsView::Gantt, format!("/orchestration/workflows/{id}?view=gantt"), Some(Icon::Gantt), "Gantt")}
        </nav>
        {steps}
        {run
            .engine
            .starts_with("custom:")
            .then(|| view! { <EngineCommands id=id.clone() version=run.execution.updated_at state /> })}
        <super::RunAlerts id=id.clone() />
        <AuditTrail id=id.clone() version=run.execution.updated_at />
        <p class="export">
            <a href=format!("/api/platform/orchestration/workflows/{id}/export") download="">
                "Export JSON"
            </a>
        </p>
    }
}

/// What was asked of this run's in-house engine and how it went, newest first: requested,
/// delivered, accepted or refused (in the engine's words), carried out as its events show
/// — or plainly not yet. Re-read when the run changes, after the operator acts, and when
/// the live connection says one of the run's commands moved on.
#[component]
fn EngineCommands(
    id: String,
    version: Option<chrono::DateTime<chrono::Utc>>,
    state: PageState,
) -> impl IntoView {
    let acted = state.action.version();
    let live = expect_context::<LiveConnection>();
    let moved = {
        let id = id.clone();
        Memo::new(move |_| {
            live.command_changes
                .with(|changes| changes.get(&id).copied())
        })
    };
    // Shared, not kept by this component: a live re-read disposes of it while its
    // Transition may still be waiting for this read.
    let commands = ArcResource::new(
        move || (id.clone(), version, acted.get(), moved.get()),
        |(id, _, _, _)| crate::api::get_engine_commands(id),
    );
    let line = |command: EngineCommand| {
        let life = match (command.state, command.carried_out, command.overdue) {
            (CommandState::Refused, _, _) => format!(
                "refused by the engine: {}",
                command.said.clone().unwrap_or_default()
            ),
            (_, true, _) => "carried out".to_owned(),
            (CommandState::Accepted, false, true) => {
                "accepted by the engine, but its events do not show it done yet".to_owned()
            }
            (CommandState::Accepted, false, false) => {
                "accepted by the engine; waiting for its events".to_owned()
            }
            (_, false, overdue) => {
                let how = if command.state == CommandState::Delivered {
                    "delivered, not answered"
                } else {
                    "not delivered"
                };
                let last = command
                    .said
                    .clone()
                    .map(|said| format!(" (last try: {said})"))
                    .unwrap_or_default();
                let late = if overdue {
                    " — not confirmed yet"
                } else {
                    ""
                };
                format!("{how}{late}{last}")
            }
        };
        let class = if command.overdue {
            "engine-command overdue"
        } else {
            "engine-command"
        };
        view! {
            <li class=class data-testid="engine-command" data-state=format!("{:?}", command.state).to_lowercase()>
                // Each text of the command in an element of its own: text written next to
                // other text is one node in the browser, which hydration could not match.
                <span class="command-action">{command.action.as_str()}</span>
                " asked by " <span class="command-by">{command.requested_by.clone()}</span>
                " at " <Time at=command.requested_at />
                {command.reason.clone().map(|reason| view! { " — reason: " <span class="command-reason">{reason}</span> })}
                " — " <span class="command-life">{life}</span>
            </li>
        }
    };
    view! {
        <Transition fallback=|| ()>
            {move || {
                let commands = commands.clone();
                Suspend::new(async move {
                    match commands.await {
                        Ok(commands) if !commands.is_empty() => Some(view! {
                            <section class="engine-commands" aria-label="Commands to the engine">
                                <h2>"Commands to the engine"</h2>
                                <ul>{commands.into_iter().map(line).collect_view()}</ul>
                            </section>
                        }),
                        _ => None,
                    }
                })
            }}
        </Transition>
    }
}

/// Who did what to this run, newest first (cancelled by whom, when, why, and how it
/// ended), re-read when the run changes.
#[component]
fn AuditTrail(id: String, version: Option<chrono::DateTime<chrono::Utc>>) -> impl IntoView {
    // Shared, not kept by this component: a live re-read disposes of it while its
    // Transition may still be waiting for this read.
    let entries = ArcResource::new(
        move || (id.clone(), version),
        |(id, _)| crate::api::get_audit(id),
    );
    let line = |entry: AuditEntry| {
        let outcome = entry.outcome.clone();
        view! {
            <li class=format!("audit-entry {outcome}") data-testid="audit-entry">
                <span class="audit-action">{entry.action.clone()}</span>
                " by " <span class="audit-actor">{entry.actor.clone()}</span>
                " at " <Time at=entry.at />
                {entry.reason.clone().map(|reason| view! { " — reason: " <span class="audit-reason">{reason}</span> })}
                {(outcome != "ok").then(|| view! { " — " {outcome.clone()} })}
                {entry.detail.clone().map(|detail| view! { <span class="audit-detail">" (" {detail} ")"</span> })}
            </li>
        }
    };
    view! {
        <Transition fallback=|| ()>
            {move || {
                let entries = entries.clone();
                Suspend::new(async move {
                    match entries.await {
                        Ok(entries) if !entries.is_empty() => Some(view! {
                            <section class="audit-trail" aria-label="Actions taken">
                                <h2>"Actions taken"</h2>
                                <ul>{entries.into_iter().map(line).collect_view()}</ul>
                            </section>
                        }),
                        _ => None,
                    }
                })
            }}
        </Transition>
    }
}

/// The outcome of the operator's last action: the engine's answer, or its reason for
/// refusing, as it is. Without JavaScript a refusal comes back in the page's address
/// (Leptos's `__err`), and `ServerAction` reads it from there.
#[component]
fn NoticeLine(state: PageState) -> impl IntoView {
    move || {
        state.action.value().get().map(|outcome| match outcome {
            Ok(answer) => {
                view! { <p class="notice ok" role="status" data-testid="notice">{answer.message}</p> }
                    .into_any()
            }
            Err(error) => {
                view! { <p class="notice error" role="alert" data-testid="notice">{error.message}</p> }
                    .into_any()
            }
        })
    }
}

/// A form that sends `action` on run `id` (with `from_step` for a retry from a step);
/// `children` are its fields and its submit button.
#[component]
fn ActionSender(
    state: PageState,
    id: String,
    action: Action,
    #[prop(optional)] from_step: Option<u32>,
    children: Children,
) -> impl IntoView {
    view! {
        <ActionForm action=state.action attr:class="action-form">
            <input type="hidden" name="id" value=id />
            <input type="hidden" name="action" value=action.as_str() />
            {from_step.map(|number| view! { <input type="hidden" name="from_step" value=number.to_string() /> })}
            {children()}
        </ActionForm>
    }
}

#[component]
fn ActionsBar(run: WorkflowDetail, state: PageState) -> impl IntoView {
    let allowed = |action: Action| action.refusal(run.status, &run.capabilities).is_none();
    let id = run.id.clone();
    let failed_step = run
        .execution
        .steps
        .iter()
        .find(|s| s.kind == StepKind::Normal && matches!(s.status, StepStatus::Failed))
        .map(|s| (s.step_number, s.name.clone()));
    let pause_hint = run
        .execution
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Running)
        .map(|s| format!("step {}", s.step_number))
        .collect::<Vec<_>>();
    let pause_title = if pause_hint.is_empty() {
        "Pause now".to_owned()
    } else {
        format!("Pauses after {} completes", pause_hint.join(" and "))
    };
    let busy = move || state.action.pending().get();
    let button = {
        let id = id.clone();
        move |action: Action, icon: Icon, label: &'static str, title: String| {
            let dialog = match action {
                Action::Cancel => Some(Dialog::Cancel),
                Action::Retry => Some(Dialog::Retry),
                Action::Terminate => Some(Dialog::Terminate),
                Action::Pause | Action::Resume | Action::Clone => None,
            };
            let class = format!("action {}", action.as_str());
            match dialog {
                // Asks first: opens its dialog here, or (without JavaScript) asks for the
                // page with the dialog open.
                Some(dialog) => view! {
                    <form method="get" class="action-form">
                        <button
                            type="submit"
                            name="confirm"
                            value=dialog.as_query()
                            class=class
                            data-action=action.as_str()
                            title=title
                            disabled=busy
                            on:click=move |ev| {
                                ev.prevent_default();
                                state.dialog_reason.set(None);
                                state.dialog.set(Some(dialog));
                            }
                        >
                            <IconView icon /> " " {label}
                        </button>
                    </form>
                }
                .into_any(),
                None => view! {
                    <ActionSender state id=id.clone() action>
                        <button type="submit" class=class data-action=action.as_str() title=title disabled=busy>
                            <IconView icon /> " " {label}
                        </button>
                    </ActionSender>
                }
                .into_any(),
            }
        }
    };
    let none_allowed = !Action::ALL.into_iter().any(allowed);
    let cancel_title = if run.capabilities.compensates_on_cancel {
        "Stop and roll back"
    } else {
        "Ask the workflow to cancel (its own code decides what to roll back)"
    };
    let cancel_question = if run.capabilities.compensates_on_cancel {
        format!("Cancel {id}? This will trigger rollback.")
    } else {
        format!("Request cancellation of {id}? The workflow's own code decides what to roll back.")
    };
    view! {
        <div class="actions" role="toolbar" aria-label="Actions">
            {allowed(Action::Pause).then(|| button(Action::Pause, Icon::Pause, "Pause", pause_title.clone()))}
            {allowed(Action::Resume).then(|| button(Action::Resume, Icon::Resume, "Resume", "Continue the run".into()))}
            {allowed(Action::Cancel).then(|| button(Action::Cancel, Icon::Cancelled, "Cancel", cancel_title.into()))}
            {allowed(Action::Retry).then(|| button(Action::Retry, Icon::Retry, "Retry", "Run again".into()))}
            {allowed(Action::Clone).then(|| button(Action::Clone, Icon::Clone, "Clone", "Start a new run with the same input".into()))}
            {allowed(Action::Terminate).then(|| button(Action::Terminate, Icon::Terminate, "Terminate (hard stop)", "Stop at once: nothing is rolled back".into()))}
            {none_allowed.then(|| view! {
                <span class="no-actions">"The engine of this workflow takes no actions from Stepline."</span>
            })}
        </div>
        <ReasonDialog
            id=id.clone()
            state
            dialog=Dialog::Cancel
            action=Action::Cancel
            question=cancel_question
            confirm="Cancel workflow"
            reason="Manual cancellation"
        />
        <ReasonDialog
            id=id.clone()
            state
            dialog=Dialog::Terminate
            action=Action::Terminate
            question=format!("Terminate {id}? It stops at once and nothing is rolled back.")
            confirm="Terminate workflow"
            reason="Manual termination"
        />
        <RetryDialog id status=run.status failed_step state />
    }
}

/// A confirmation with a reason (cancel, terminate).
#[component]
fn ReasonDialog(
    id: String,
    state: PageState,
    dialog: Dialog,
    action: Action,
    question: String,
    confirm: &'static str,
    reason: &'static str,
) -> impl IntoView {
    let typed = state.dialog_reason;
    let default = reason;
    let reason = move || typed.get().unwrap_or_else(|| default.to_owned());
    let title_id = format!("{}-title", action.as_str());
    // The dialog takes the focus when it opens, on its reason (keyboard users type at once).
    let field = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if let Some(field) = field.get() {
            let _ = field.focus();
        }
    });
    view! {
        <Show when=move || state.dialog.get() == Some(dialog)>
            <div class="dialog" role="dialog" aria-modal="true" aria-labelledby=title_id.clone()>
                <p id=title_id.clone() class="dialog-title">{question.clone()}</p>
                {
                    // The form's fields are built once per showing, each with its own copy.
                    let id = id.clone();
                    view! {
                <ActionSender state id=id.clone() action>
                    <label>
                        "Reason "
                        // `value` for the page as served, `prop:value` once it is live.
                        <input
                            node_ref=field
                            type="text"
                            name="reason"
                            required=true
                            minlength="1"
                            maxlength="2048"
                            value=default
                            prop:value=reason
                            on:input=move |ev| typed.set(Some(event_target_value(&ev)))
                        />
                    </label>
                    <div class="dialog-buttons">
                        <button
                            type="submit"
                            class="danger"
                            data-action=format!("confirm-{}", action.as_str())
                        >
                            {confirm}
                        </button>
                        <CloseDialog state id label="Keep running" />
                    </div>
                </ActionSender>
                    }
                }
            </div>
        </Show>
    }
}

#[component]
fn RetryDialog(
    id: String,
    status: WorkflowStatus,
    failed_step: Option<(u32, String)>,
    state: PageState,
) -> impl IntoView {
    let rollback = status == WorkflowStatus::CompensationFailed;
    view! {
        <Show when=move || state.dialog.get() == Some(Dialog::Retry)>
            <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="retry-title">
                <p id="retry-title" class="dialog-title">
                    {if rollback { "Retry the rollback?" } else { "Retry this workflow from…" }}
                </p>
                <div class="dialog-buttons">
                    <ActionSender state id=id.clone() action=Action::Retry>
                        <button type="submit" data-action="retry-start">
                            {if rollback { "Retry the failed compensation" } else { "From the start" }}
                        </button>
                    </ActionSender>
                    {(!rollback)
                        .then(|| failed_step.clone())
                        .flatten()
                        .map(|(number, name)| {
                            view! {
                                <ActionSender state id=id.clone() action=Action::Retry from_step=number>
                                    <button type="submit" data-action="retry-failed-step">
                                        {format!("From failed step {number} ({name})")}
                                    </button>
                                </ActionSender>
                            }
                        })}
                    <CloseDialog state id=id.clone() label="Close" />
                </div>
            </div>
        </Show>
    }
}

/// Closes the open dialog: here, or (without JavaScript) by asking for the run's page
/// without it.
#[component]
fn CloseDialog(state: PageState, id: String, label: &'static str) -> impl IntoView {
    view! {
        <a
            class="button"
            role="button"
            href=format!("/orchestration/workflows/{id}")
            on:click=move |ev| {
                ev.prevent_default();
                state.dialog.set(None);
            }
        >
            {label}
        </a>
    }
}

/// A row of the timeline before it is cut into pages: a step, or a big fan-out as one.
#[derive(Clone)]
enum Entry<'a> {
    Step(&'a Step),
    FanOut(FanOut),
}

impl Entry<'_> {
    fn holds(&self, step_number: u32) -> bool {
        match self {
            Entry::Step(step) => step.step_number == step_number,
            Entry::FanOut(fan_out) => fan_out.contains(step_number),
        }
    }

    /// The first and last step number in the row.
    fn steps(&self) -> (u32, u32) {
        match self {
            Entry::Step(step) => (step.step_number, step.step_number),
            Entry::FanOut(fan_out) => (
                fan_out.first(),
                fan_out.members.last().copied().unwrap_or_default(),
            ),
        }
    }
}

/// The run's own steps (in order) as timeline rows: each fan-out's siblings become one
/// row, where its first sibling was.
fn entries<'a>(normal: &'a [Step], fan_outs: &[FanOut]) -> Vec<Entry<'a>> {
    let member_of: HashMap<u32, usize> = fan_outs
        .iter()
        .enumerate()
        .flat_map(|(i, fan_out)| fan_out.members.iter().map(move |&n| (n, i)))
        .collect();
    let mut shown = vec![false; fan_outs.len()];
    normal
        .iter()
        .filter_map(|step| match member_of.get(&step.step_number) {
            None => Some(Entry::Step(step)),
            Some(&i) if !shown[i] => {
                shown[i] = true;
                Some(Entry::FanOut(fan_outs[i].clone()))
            }
            Some(_) => None,
        })
        .collect()
}

/// A stretch of the timeline: one step, steps of parallel branches side by side, or a
/// fan-out's summary.
enum Stretch<'a> {
    Single(&'a Step),
    Branches(Vec<(String, Vec<&'a Step>)>),
    FanOut(FanOut),
}

fn stretches<'a>(entries: &[Entry<'a>]) -> Vec<Stretch<'a>> {
    let mut out: Vec<Stretch<'a>> = Vec::new();
    for entry in entries {
        let step = match entry {
            Entry::FanOut(fan_out) => {
                out.push(Stretch::FanOut(fan_out.clone()));
                continue;
            }
            Entry::Step(step) => *step,
        };
        match (&step.branch, out.last_mut()) {
            (None, _) => out.push(Stretch::Single(step)),
            (Some(branch), Some(Stretch::Branches(columns))) => {
                match columns.iter_mut().find(|(label, _)| label == branch) {
                    Some((_, column)) => column.push(step),
                    None => columns.push((branch.clone(), vec![step])),
                }
            }
            (Some(branch), _) => out.push(Stretch::Branches(vec![(branch.clone(), vec![step])])),
        }
    }
    out
}

#[component]
fn Timeline(run: WorkflowDetail, state: PageState) -> impl IntoView {
    let query = use_query_map();
    let normal: Vec<Step> = run
        .execution
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::Normal)
        .cloned()
        .collect();
    let compensations: Vec<Step> = run
        .execution
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::Compensation)
        .cloned()
        .collect();
    let fan_outs = fan_outs(&normal);
    let rows = entries(&normal, &fan_outs);
    let pages = rows.len().div_ceil(STEPS_PER_PAGE).max(1);
    let asked_step = query.with_untracked(|q| q.get("step")?.parse::<u32>().ok());
    // A step asked for inside a fan-out opens it.
    if let Some(fan_out) = asked_step.and_then(|n| fan_outs.iter().find(|f| f.contains(n))) {
        state.fan_outs_open.update(|open| {
            open.insert(fan_out.first());
        });
    }
    // The page asked for, else the one holding the step asked for (`?step=N`).
    let page = query
        .with_untracked(|q| {
            q.get("page")
                .and_then(|p| p.parse::<usize>().ok())
                .or_else(|| {
                    let step = asked_step?;
                    let index = rows.iter().position(|row| row.holds(step))?;
                    Some(index / STEPS_PER_PAGE + 1)
                })
        })
        .unwrap_or(1)
        .clamp(1, pages);
    let shown: Vec<Entry> = rows
        .iter()
        .skip((page - 1) * STEPS_PER_PAGE)
        .take(STEPS_PER_PAGE)
        .cloned()
        .collect();
    let id = run.id.clone();
    let blocks = stretches(&shown)
        .into_iter()
        .map(|stretch| match stretch {
            Stretch::Single(step) => view! { <StepItem step=step.clone() label=None state /> }.into_any(),
            Stretch::FanOut(fan_out) => {
                let members: Vec<Step> = normal
                    .iter()
                    .filter(|s| fan_out.contains(s.step_number))
                    .cloned()
                    .collect();
                view! { <FanOutItem fan_out members run_id=id.clone() state /> }.into_any()
            }
            Stretch::Branches(columns) => {
                let open = columns.len() <= BRANCHES_SHOWN_OPEN;
                let count = columns.len();
                view! {
                    <li class="branches">
                        <details open=open>
                            <summary>{format!("{count} parallel branches")}</summary>
                            <div class="branch-columns">
                                {columns
                                    .into_iter()
                                    .map(|(label, steps)| view! {
                                        <ol class="branch" data-branch=label.clone() aria-label=label.clone()>
                                            <li class="branch-label">{label.clone()}</li>
                                            {steps
                                                .into_iter()
                                                .map(|step| view! { <StepItem step=step.clone() label=None state /> })
                                                .collect_view()}
                                        </ol>
                                    })
                                    .collect_view()}
                            </div>
                        </details>
                    </li>
                }
                .into_any()
            }
        })
        .collect_view();
    view! {
        <h2>"Steps"</h2>
        <ol class="timeline" data-testid="timeline">{blocks}</ol>
        {(pages > 1).then(|| view! {
            <nav class="pager" aria-label="Step pages">
                {(1..=pages)
                    .map(|n| {
                        let on_page = &rows[(n - 1) * STEPS_PER_PAGE..(n * STEPS_PER_PAGE).min(rows.len())];
                        let first = on_page.first().map_or(0, |row| row.steps().0);
                        let last = on_page.last().map_or(0, |row| row.steps().1);
                        view! {
                            <a
                                href=format!("/orchestration/workflows/{id}?page={n}")
                                aria-current=(n == page).then_some("page")
                            >
                                {format!("Steps {first}–{last}")}
                            </a>
                        }
                    })
                    .collect_view()}
            </nav>
        })}
        {(!compensations.is_empty()).then(|| view! {
            <h2>"Rollback"</h2>
            <ol class="timeline rollback" data-testid="rollback">
                {compensations
                    .into_iter()
                    .enumerate()
                    .map(|(i, step)| view! { <StepItem step label=Some(format!("C{}", i + 1)) state /> })
                    .collect_view()}
            </ol>
        })}
    }
}

/// "Expected 12:07:10, likely by 12:11:40 — SLA 12:05:00: likely breach", or why there is
/// no forecast.
#[component]
fn ForecastLine(
    forecast: crate::model::Forecast,
    sla_deadline: Option<chrono::DateTime<chrono::Utc>>,
) -> impl IntoView {
    let class = format!("forecast-line breach-{}", forecast.breach.as_str());
    let breach = super::parts::breach_words(&forecast);
    let words = match (forecast.expected_at, forecast.likely_by) {
        (Some(expected), Some(likely_by)) => view! {
            "Expected " <Time at=expected form=TimeForm::Clock />
            ", likely by " <Time at=likely_by form=TimeForm::Clock />
            {sla_deadline.map(|at| view! { " — SLA " <Time at form=TimeForm::Clock /> })}
            {breach.map(|breach| view! { ": " <strong>{breach}</strong> })}
            {format!(" (from {} earlier runs)", forecast.runs_seen)}
        }
        .into_any(),
        _ => format!(
            "No forecast: {}",
            super::parts::no_forecast_words(&forecast)
        )
        .into_any(),
    };
    view! {
        <p class=class role="status" data-testid="forecast-line" data-breach=forecast.breach.as_str()>
            {words}
        </p>
    }
}
