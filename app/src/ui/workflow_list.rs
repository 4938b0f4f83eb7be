//! `/orchestration`: the workflow list — tabs (Active, Pending, Completed, Failed, Slow)
//! with live counts, the stats line, filters, sorting and pages, all in the URL so a
//! link reproduces the view. Rendered on the server from the store and kept current in
//! the browser by the live connection: rows change, enter and leave as runs move.

use super::live::LiveConnection;
use super::parts::{
    encode_component, ErrorView, ForecastCell, LiveDuration, ProgressBar, SlaBadge, StatusBadge,
};
use super::time::{Time, TimeForm};
use crate::api::{get_stats, list_workflows};
use crate::model::{
    EngineState, ErrorBody, ErrorKind, ListQuery, Sort, Subscription, Tab, Workflow, WorkflowList,
    WorkflowStats, WorkflowStatus, MAX_ENGINE_LEN, MAX_SEARCH, MAX_WORKFLOW_TYPE_LEN, MIN_SEARCH,
};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// Query-string keys the list understands.
const QUERY_KEYS: [&str; 10] = [
    "tab", "status", "type", "engine", "q", "from", "to", "sort", "limit", "cursor",
];

/// `/orchestration?...` for a query (without its cursor), plus extra pairs.
fn list_href(query: &ListQuery, extra: &[(&str, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .to_params()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    pairs.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    if pairs.is_empty() {
        return "/orchestration".into();
    }
    let encoded: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode_component(v)))
        .collect();
    format!("/orchestration?{}", encoded.join("&"))
}

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
                .map_err(|e| ErrorBody::new(ErrorKind::BadRequest, e.to_string()))
        })
    });
    let live = expect_context::<LiveConnection>();
    // The list shows any run that starts: the socket follows them all.
    Effect::new(move |_| {
        live.follow(Subscription {
            all: true,
            ..Subscription::default()
        })
    });
    let list = Resource::new(
        move || (query.get(), live.reloads.get()),
        |(query, _)| async move {
            match query {
                Ok(query) => list_workflows(query).await,
                Err(error) => Err(error),
            }
        },
    );
    // Counts move with every change; they are re-read at most once a second.
    let stats_version = RwSignal::new(0u64);
    #[cfg(feature = "hydrate")]
    {
        let waiting = StoredValue::new(false);
        Effect::new(move |first: Option<()>| {
            live.workflows.track();
            if first.is_some() && !waiting.get_value() {
                waiting.set_value(true);
                set_timeout(
                    move || {
                        waiting.set_value(false);
                        stats_version.update(|n| *n += 1);
                    },
                    std::time::Duration::from_secs(1),
                );
            }
        });
    }
    let fresh_stats = Resource::new(
        move || stats_version.get(),
        |version| async move {
            if version == 0 {
                None
            } else {
                get_stats().await.ok()
            }
        },
    );

    view! {
        <section class="workflows">
            <h1>"Orchestration workflows"</h1>
            <Suspense fallback=|| view! { <p class="loading">"Loading workflows…"</p> }>
                {move || Suspend::new(async move {
                    match list.await {
                        Ok(page) => {
                            let query = query.get_untracked().unwrap_or_default();
                            let initial = page.stats.clone();
                            let stats = Signal::derive(move || {
                                fresh_stats.get().flatten().unwrap_or_else(|| initial.clone())
                            });
                            view! {
                                <EngineBanner stats />
                                <StatsLine stats />
                                <Tabs query stats />
                            }
                                .into_any()
                        }
                        Err(error) => {
                            view! {
                                <Tabs query=ListQuery::default() stats=Signal::stored(WorkflowStats::default()) />
                                <ErrorView what="Could not load workflows" error />
                            }
                                .into_any()
                        }
                    }
                })}
            </Suspense>
            // The search form follows the address only: a reload of the list (a live
            // resync) does not redraw it under the operator's typing.
            {move || query.get().ok().map(|query| view! { <Filters query /> })}
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    list.await.ok().map(|page| {
                        let query = query.get_untracked().unwrap_or_default();
                        view! { <WorkflowTable page query live /> }
                    })
                })}
            </Suspense>
        </section>
    }
}

/// Says which followed engines Stepline cannot reach now (their runs may be stale).
#[component]
fn EngineBanner(stats: Signal<WorkflowStats>) -> impl IntoView {
    move || {
        stats.with(|stats| {
            stats
                .engines
                .iter()
                .filter(|engine| engine.state != EngineState::Ok)
                .map(|engine| {
                    let text = match engine.state {
                        EngineState::Connecting => format!("Connecting to {}…", engine.engine).into_any(),
                        _ => view! {
                            {format!("{} is unreachable since ", engine.engine)}
                            <Time at=engine.since form=TimeForm::Clock />
                            {format!(
                                " ({}). Its workflows may be stale; Stepline catches up when it answers again.",
                                engine.message.clone().unwrap_or_default()
                            )}
                        }
                        .into_any(),
                    };
                    view! {
                        <p
                            class="engine-banner"
                            role="alert"
                            data-testid="engine-banner"
                            data-engine=engine.engine.clone()
                            data-state=if engine.state == EngineState::Connecting { "connecting" } else { "degraded" }
                        >
                            {text}
                        </p>
                    }
                })
                .collect_view()
        })
    }
}

#[component]
fn StatsLine(stats: Signal<WorkflowStats>) -> impl IntoView {
    view! {
        <p class="stats" data-testid="stats">
            <span data-testid="stat-active">{move || stats.get().active} " active"</span>
            " • "
            <span data-testid="stat-pending">{move || stats.get().pending} " pending"</span>
            " • "
            <span data-testid="stat-sla">
                {move || match stats.get().sla_compliance_today {
                    Some(percent) => format!("{percent}% SLA compliance today"),
                    None => "no SLA results today".to_owned(),
                }}
            </span>
            " • "
            <span>{move || stats.get().completed_today} " completed today"</span>
            " • "
            <span>{move || stats.get().failed_today} " failed today"</span>
        </p>
    }
}

#[component]
fn Tabs(query: ListQuery, stats: Signal<WorkflowStats>) -> impl IntoView {
    let all_query = ListQuery {
        tab: None,
        cursor: None,
        ..query.clone()
    };
    let current = query.tab;
    view! {
        <nav class="tabs" aria-label="Tabs">
            <a
                href=list_href(&all_query, &[])
                class=if current.is_none() { "tab active" } else { "tab" }
                aria-current=current.is_none().then_some("page")
                data-tab="all"
            >
                "All"
            </a>
            {Tab::ALL
                .into_iter()
                .map(|tab| {
                    let href = list_href(
                        &ListQuery {
                            tab: Some(tab),
                            statuses: Vec::new(),
                            ..all_query.clone()
                        },
                        &[],
                    );
                    let selected = current == Some(tab);
                    view! {
                        <a
                            href=href
                            class=if selected { "tab active" } else { "tab" }
                            aria-current=selected.then_some("page")
                            data-tab=tab.as_str()
                        >
                            {tab.label()}
                            " "
                            <span class="count" data-testid=format!("count-{}", tab.as_str())>
                                {move || stats.get().tabs.of(tab)}
                            </span>
                        </a>
                    }
                })
                .collect_view()}
        </nav>
    }
}

/// The filter form: a plain GET form, so it works without JavaScript too.
#[component]
fn Filters(query: ListQuery) -> impl IntoView {
    let date = |instant: Option<chrono::DateTime<chrono::Utc>>| {
        instant
            .map(|i| i.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    // `to` is exclusive: the form shows the last day included.
    let to_day = query.until.map(|until| until - chrono::Duration::days(1));
    view! {
        <form class="filters" method="get" action="/orchestration" role="search">
            {query.tab.map(|tab| view! { <input type="hidden" name="tab" value=tab.as_str() /> })}
            <label>
                "Search "
                <input type="search" name="q" minlength=MIN_SEARCH maxlength=MAX_SEARCH placeholder="id, engine id, type, trigger, tag"
                    value=query.text.clone().unwrap_or_default() />
            </label>
            <label>
                "Type "
                <input type="text" name="type" maxlength=MAX_WORKFLOW_TYPE_LEN value=query.workflow_type.clone().unwrap_or_default() />
            </label>
            <label>
                "Engine "
                <input type="text" name="engine" maxlength=MAX_ENGINE_LEN value=query.engine.clone().unwrap_or_default() />
            </label>
            <label>
                "Status "
                <select name="status">
                    <option value="" selected=query.statuses.is_empty()>"any"</option>
                    {WorkflowStatus::ALL
                        .into_iter()
                        .map(|status| view! {
                            <option value=status.as_str() selected=query.statuses == [status]>
                                {status.as_str()}
                            </option>
                        })
                        .collect_view()}
                </select>
            </label>
            <label title="Running runs whose expected end is past their SLA target">
                <input type="checkbox" name="will_breach" value="true" checked=query.will_breach
                    data-testid="will-breach" />
                " Will breach"
            </label>
            <label>"From " <input type="date" name="from" value=date(query.since) /></label>
            <label>"To " <input type="date" name="to" value=date(to_day) /></label>
            <label>
                "Sort "
                <select name="sort">
                    <option value="newest" selected=query.sort == Sort::Newest>"newest first"</option>
                    <option value="oldest" selected=query.sort == Sort::Oldest>"oldest first"</option>
                </select>
            </label>
            <button type="submit">"Apply"</button>
            <a class="reset" href="/orchestration">"Reset"</a>
            {query.since.map(|from| {
                let window = crate::model::analytics::Window::Range { from, to: query.until };
                view! {
                    <a class="analytics-link" data-testid="range-analytics"
                        href=format!("/orchestration/analytics?{}", window.to_query())>
                        "Analytics for these dates"
                    </a>
                }
            })}
        </form>
    }
}

/// The rows of a page, with live changes laid over them: changed rows are replaced,
/// rows that no longer match the view leave, and new matching runs appear on top (on
/// the first page of the newest-first order, where new runs belong). Never more rows
/// than the page holds: the newest stay, the rest are on the next page.
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
    if query.cursor.is_none() && query.sort == Sort::Newest {
        let on_page: std::collections::HashSet<&str> =
            page.workflows.iter().map(|row| row.id.as_str()).collect();
        let mut fresh: Vec<&Workflow> = live
            .values()
            .filter(|w| !on_page.contains(w.id.as_str()))
            .filter(|w| query.matches(w))
            .collect();
        fresh.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        rows.extend(fresh.into_iter().cloned());
    }
    rows.extend(
        page.workflows
            .iter()
            .map(newer)
            .filter(|w| query.matches(w)),
    );
    rows.truncate(query.effective_limit() as usize);
    rows
}

#[component]
fn WorkflowTable(page: WorkflowList, query: ListQuery, live: LiveConnection) -> impl IntoView {
    // Past what is counted exactly (a search, a date range), the count is a floor.
    let total = if page.total_capped {
        format!("more than {}", page.total)
    } else {
        page.total.to_string()
    };
    let next = page
        .next_cursor
        .clone()
        .map(|cursor| list_href(&query, &[("cursor", cursor)]));
    let first_page = query.cursor.is_some().then(|| list_href(&query, &[]));
    live.resume_from(page.seq);
    let rows = Memo::new(move |_| live.workflows.with(|map| merge_live(&page, &query, map)));
    view! {
        <p class="matching" data-testid="matching">{total} " matching"</p>
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
                        <th>"Started"</th>
                        <th>"Progress"</th>
                        <th>"Duration"</th>
                        <th>"Status"</th>
                        <th>"SLA"</th>
                        <th title="Expected end, from earlier runs of the type">"ETA"</th>
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
        <nav class="pager" aria-label="Pages">
            {first_page.map(|href| view! { <a href=href>"← Newest"</a> })}
            {next.map(|href| view! { <a href=href data-testid="next-page">"Next page →"</a> })}
        </nav>
    }
}

#[component]
fn WorkflowRow(workflow: Workflow) -> impl IntoView {
    let progress = workflow.progress;
    let status = workflow.status;
    let duration = view! {
        <LiveDuration
            seconds=workflow.duration_seconds
            started_at=workflow.started_at
            ticking=status.is_active()
        />
    };
    let href = format!("/orchestration/workflows/{}", workflow.id);
    view! {
        <tr data-workflow-id=workflow.id.clone() data-status=status.as_str()>
            <td class="id"><a href=href title=workflow.engine_ref.clone()>{workflow.id.clone()}</a></td>
            <td>{workflow.workflow_type.clone()}</td>
            <td class="engine">{workflow.engine.clone()}</td>
            <td class="started">
                {workflow.started_at.map(|at| view! { <Time at /> })}
            </td>
            <td class="progress">
                <ProgressBar progress />
            </td>
            <td class="duration">{duration}</td>
            <td class="status">
                <StatusBadge status />
            </td>
            <td>
                <SlaBadge sla=workflow.sla_status />
            </td>
            <td class="eta">
                <ForecastCell forecast=workflow.forecast.clone() status />
            </td>
            <td>{workflow.triggered_by.clone().unwrap_or_else(|| "–".to_owned())}</td>
            <td>{workflow.priority.as_str()}</td>
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::merge_live;
    use crate::model::{ListQuery, Workflow, WorkflowList};
    use std::collections::HashMap;

    fn row(id: &str, created_minute: u32) -> Workflow {
        serde_json::from_value(serde_json::json!({
            "id": id, "type": "data_sync", "engine": "builtin", "status": "RUNNING",
            "progress": {"current_step": 1, "total_steps": 5, "percent": 20},
            "created_at": format!("2026-11-26T08:{created_minute:02}:00Z"),
            "updated_at": format!("2026-11-26T08:{created_minute:02}:01Z"),
            "duration_seconds": 1.0, "sla_status": "no_target", "priority": "NORMAL", "tags": []
        }))
        .expect("a valid list row")
    }

    #[test]
    fn new_live_runs_go_on_top_and_the_list_stays_within_its_page() {
        let page = WorkflowList {
            workflows: vec![row("wf-b", 2), row("wf-a", 1)],
            total: 2,
            ..WorkflowList::default()
        };
        let query = ListQuery {
            limit: Some(3),
            ..ListQuery::default()
        };
        let live: HashMap<String, Workflow> = (3..8)
            .map(|minute| {
                let id = format!("wf-new-{minute}");
                (id.clone(), row(&id, minute))
            })
            .collect();
        let ids: Vec<String> = merge_live(&page, &query, &live)
            .into_iter()
            .map(|w| w.id)
            .collect();
        assert_eq!(ids, ["wf-new-7", "wf-new-6", "wf-new-5"]);
        let ids: Vec<String> = merge_live(&page, &query, &HashMap::new())
            .into_iter()
            .map(|w| w.id)
            .collect();
        assert_eq!(ids, ["wf-b", "wf-a"]);
    }
}
