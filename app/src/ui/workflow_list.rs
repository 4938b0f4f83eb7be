//! `/orchestration`: the workflow list, rendered on the server from the store and kept
//! current in the browser by the live connection.

use super::live::LiveConnection;
use crate::api::list_workflows;
use crate::model::{format_duration, ListQuery, SlaStatus, Workflow, WorkflowList, WorkflowStatus};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// Query-string keys the list understands.
const QUERY_KEYS: [&str; 4] = ["status", "type", "limit", "cursor"];

/// The status filters offered above the table.
const STATUS_FILTERS: [(&str, &str); 6] = [
    ("All", ""),
    ("Running", "RUNNING"),
    ("Pending", "PENDING"),
    ("Paused", "PAUSED"),
    ("Completed", "COMPLETED"),
    ("Failed", "FAILED"),
];

#[component]
pub fn WorkflowListPage() -> impl IntoView {
    let params = use_query_map();
    let query = Memo::new(move |_| {
        params.with(|params| {
            let pairs: Vec<(&str, String)> = QUERY_KEYS
                .iter()
                .filter_map(|key| params.get(key).map(|value| (*key, value)))
                .collect();
            ListQuery::from_params(pairs.iter().map(|(k, v)| (*k, v.as_str())))
                .map_err(|e| e.to_string())
        })
    });
    let live = expect_context::<LiveConnection>();
    let list = Resource::new(
        move || (query.get(), live.reloads.get()),
        |(query, _)| async move {
            match query {
                Ok(query) => list_workflows(query).await.map_err(|e| e.to_string()),
                Err(message) => Err(message),
            }
        },
    );

    view! {
        <section class="workflows">
            <h1>"Orchestration workflows"</h1>
            <StatusFilters />
            <Suspense fallback=|| view! { <p class="loading">"Loading workflows…"</p> }>
                {move || Suspend::new(async move {
                    match list.await {
                        Ok(page) => {
                            let query = query.get_untracked().unwrap_or_default();
                            view! { <WorkflowTable page query live /> }.into_any()
                        }
                        Err(message) => {
                            view! {
                                <p class="error" role="alert">
                                    "Could not load workflows: "
                                    {message}
                                </p>
                            }
                                .into_any()
                        }
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn StatusFilters() -> impl IntoView {
    let params = use_query_map();
    let current = move || params.with(|p| p.get("status").unwrap_or_default());
    view! {
        <nav class="filters" aria-label="Status">
            {STATUS_FILTERS
                .into_iter()
                .map(|(label, status)| {
                    let href = if status.is_empty() {
                        "/orchestration".to_owned()
                    } else {
                        format!("/orchestration?status={status}")
                    };
                    // Plain links (the router still takes their clicks): `A` would mark
                    // every one as the current page, as they differ only in the query.
                    view! {
                        <a
                            href=href
                            class=move || {
                                if current() == status { "filter active" } else { "filter" }
                            }
                            aria-current=move || (current() == status).then_some("true")
                        >
                            {label}
                        </a>
                    }
                })
                .collect_view()}
        </nav>
    }
}

/// The rows of a page, with live changes laid over them: changed rows are replaced,
/// rows that no longer match the filters leave, and new matching runs appear on top
/// (on the first page only, where the newest runs belong).
fn merge_live(
    page: &WorkflowList,
    query: &ListQuery,
    live: &std::collections::HashMap<String, Workflow>,
) -> Vec<Workflow> {
    let newer = |row: &Workflow| match live.get(&row.id) {
        Some(update) if update.updated_at >= row.updated_at => update.clone(),
        _ => row.clone(),
    };
    let mut rows: Vec<Workflow> = Vec::with_capacity(page.workflows.len());
    if query.cursor.is_none() {
        let mut fresh: Vec<&Workflow> = live
            .values()
            .filter(|w| !page.workflows.iter().any(|row| row.id == w.id))
            .filter(|w| query.matches(w.status, &w.workflow_type))
            .collect();
        fresh.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
        rows.extend(fresh.into_iter().cloned());
    }
    rows.extend(
        page.workflows
            .iter()
            .map(newer)
            .filter(|w| query.matches(w.status, &w.workflow_type)),
    );
    rows
}

#[component]
fn WorkflowTable(page: WorkflowList, query: ListQuery, live: LiveConnection) -> impl IntoView {
    let stats = page.stats;
    let total = page.total;
    let next_cursor = page.next_cursor.clone();
    live.resume_from(page.seq);
    let rows = Memo::new(move |_| live.workflows.with(|map| merge_live(&page, &query, map)));
    view! {
        <p class="stats" data-testid="stats">
            <span>{stats.active} " active"</span>
            " • "
            <span>{stats.pending} " pending"</span>
            " • "
            <span>{stats.completed_today} " completed today"</span>
            " • "
            <span>{stats.failed_today} " failed today"</span>
            " • "
            <span>{total} " matching"</span>
        </p>
        <Show
            when=move || rows.with(|rows| !rows.is_empty())
            fallback=|| {
                view! {
                    <p class="empty" data-testid="empty">
                        "No workflows match. Runs appear here as soon as an engine reports them."
                    </p>
                }
            }
        >
            <table class="workflow-table">
                <thead>
                    <tr>
                        <th>"Workflow ID"</th>
                        <th>"Type"</th>
                        <th>"Engine"</th>
                        <th>"Progress"</th>
                        <th>"Duration"</th>
                        <th>"Status"</th>
                        <th>"SLA"</th>
                        <th>"Triggered by"</th>
                        <th>"Priority"</th>
                    </tr>
                </thead>
                <tbody>
                    <For
                        each=move || rows.get()
                        key=|w| (w.id.clone(), w.updated_at)
                        children=|w| view! { <WorkflowRow workflow=w /> }
                    />
                </tbody>
            </table>
        </Show>
        {next_cursor
            .map(|cursor| {
                view! {
                    <p class="pager">
                        <a href=format!("?cursor={cursor}")>"Older workflows →"</a>
                    </p>
                }
            })}
    }
}

#[component]
fn WorkflowRow(workflow: Workflow) -> impl IntoView {
    let progress = workflow.progress;
    let status = workflow.status;
    view! {
        <tr data-workflow-id=workflow.id.clone() data-status=status.as_str()>
            <td class="id">{workflow.id.clone()}</td>
            <td>{workflow.workflow_type.clone()}</td>
            <td class="engine">{workflow.engine.clone()}</td>
            <td class="progress">
                <progress max=progress.total_steps.max(1) value=progress.current_step></progress>
                <span class="progress-text">
                    {format!(
                        "{}/{} ({}%)",
                        progress.current_step,
                        progress.total_steps,
                        progress.percent,
                    )}
                </span>
            </td>
            <td class="duration">{format_duration(workflow.duration_seconds)}</td>
            <td class="status">
                <span class=status_class(status)>{status.icon()} " " {status.as_str()}</span>
            </td>
            <td>
                <span class=sla_class(workflow.sla_status)>
                    {workflow.sla_status.as_str().replace('_', " ")}
                </span>
            </td>
            <td>{workflow.triggered_by.clone().unwrap_or_else(|| "–".to_owned())}</td>
            <td>{workflow.priority.as_str()}</td>
        </tr>
    }
}

fn status_class(status: WorkflowStatus) -> String {
    format!("badge status-{}", status.as_str().to_ascii_lowercase())
}

fn sla_class(sla: SlaStatus) -> String {
    format!("badge sla-{}", sla.as_str())
}
