//! `/orchestration/audit?actor=&workflow_id=&action=&since=&until=`: the audit log, newest
//! first — who did what to which run, by session or which token, why, and how it ended;
//! sign-ins, account and token changes too. A plain GET form filters it, so it works
//! with JavaScript off; older entries are a link away. Operators and admins only.

use super::parts::{encode_component, ErrorView};
use super::time::Time;
use crate::api::search_audit;
use crate::model::identity::{AuditEntry, AuditQuery};
use crate::model::{ErrorBody, ErrorKind};
use chrono::{DateTime, NaiveDateTime, Utc};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// The page's query keys, as the API's.
const KEYS: [&str; 6] = ["actor", "workflow_id", "action", "since", "until", "before"];

/// A time as typed in the form (`2026-12-06T15:30`, UTC) or as RFC 3339.
fn parse_time(what: &str, text: &str) -> Result<Option<DateTime<Utc>>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M").map(|time| time.and_utc())
        })
        .map(Some)
        .map_err(|_| format!("{what}: {text:?} is not a time such as 2026-12-06T15:30"))
}

/// The search the address asks for.
fn query_of(get: impl Fn(&str) -> Option<String>) -> Result<AuditQuery, String> {
    let text = |key: &str| {
        get(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let before = match text("before") {
        Some(before) => Some(
            before
                .parse::<i64>()
                .map_err(|_| format!("before: {before:?} is not an entry number"))?,
        ),
        None => None,
    };
    Ok(AuditQuery {
        actor: text("actor"),
        workflow_id: text("workflow_id"),
        action: text("action"),
        since: parse_time("since", &get("since").unwrap_or_default())?,
        until: parse_time("until", &get("until").unwrap_or_default())?,
        before,
        limit: None,
    })
}

/// The address of the page with the same filters, entries older than `before`.
fn older_href(get: impl Fn(&str) -> Option<String>, before: i64) -> String {
    let mut pairs: Vec<String> = KEYS
        .iter()
        .filter(|key| **key != "before")
        .filter_map(|key| get(key).map(|value| format!("{key}={}", encode_component(&value))))
        .collect();
    pairs.push(format!("before={before}"));
    format!("/orchestration/audit?{}", pairs.join("&"))
}

#[component]
pub fn AuditLogPage() -> impl IntoView {
    let params = use_query_map();
    let query = Memo::new(move |_| params.with(|p| query_of(|key| p.get(key))));
    let page = Resource::new(
        move || query.get(),
        |query| async move {
            match query {
                Ok(query) => search_audit(query).await,
                Err(message) => Err(ErrorBody::new(ErrorKind::BadRequest, message)),
            }
        },
    );
    let field = move |key: &'static str| params.with(|p| p.get(key).unwrap_or_default());
    view! {
        <section class="audit-log">
            <h1>"Audit log"</h1>
            <form method="get" action="/orchestration/audit" class="filters" role="search">
                <label>"Person or token " <input name="actor" value=move || field("actor") placeholder="ana@example.com" /></label>
                <label>"Run " <input name="workflow_id" value=move || field("workflow_id") /></label>
                <label>"Action " <input name="action" value=move || field("action") placeholder="cancel" /></label>
                <label>"From (UTC) " <input name="since" type="datetime-local" value=move || field("since") /></label>
                <label>"Until (UTC) " <input name="until" type="datetime-local" value=move || field("until") /></label>
                <button type="submit">"Search"</button>
            </form>
            <Suspense fallback=|| view! { <p class="loading">"Reading the audit log…"</p> }>
                {move || Suspend::new(async move {
                    match page.await {
                        Ok(found) if found.entries.is_empty() => view! {
                            <p class="empty" data-testid="no-audit-entries">"No entry matches."</p>
                        }
                        .into_any(),
                        Ok(found) => {
                            let older = found
                                .next_before
                                .map(|before| params.with(|p| older_href(|key| p.get(key), before)));
                            view! {
                                <table class="workflow-table audit-table">
                                    <thead>
                                        <tr>
                                            <th>"When"</th>
                                            <th>"Who"</th>
                                            <th>"Action"</th>
                                            <th>"Run"</th>
                                            <th>"Outcome"</th>
                                            <th>"Reason, detail"</th>
                                        </tr>
                                    </thead>
                                    <tbody>{found.entries.into_iter().map(|entry| view! { <Entry entry /> }).collect_view()}</tbody>
                                </table>
                                {older.map(|href| view! { <p><a href=href data-testid="older-entries">"Older entries"</a></p> })}
                            }
                            .into_any()
                        }
                        Err(error) => view! { <ErrorView what="Could not read the audit log" error /> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// One entry's row; everything in it is shown as text.
#[component]
fn Entry(entry: AuditEntry) -> impl IntoView {
    let run = entry.workflow_id.clone().map(|id| {
        let href = format!("/orchestration/workflows/{}", encode_component(&id));
        view! { <a class="id" href=href>{id}</a> }
    });
    let said: Vec<String> = [
        entry
            .reason
            .clone()
            .map(|reason| format!("reason: {reason}")),
        entry.detail.clone(),
    ]
    .into_iter()
    .flatten()
    .collect();
    view! {
        <tr class=format!("audit-entry {}", entry.outcome) data-testid="audit-row">
            <td><Time at=entry.at /></td>
            <td><span class="audit-actor">{entry.actor.clone()}</span> <span class="muted">{format!("({})", entry.via)}</span></td>
            <td class="audit-action">{entry.action.clone()}</td>
            <td>{run}</td>
            <td class="audit-outcome">{entry.outcome.clone()}</td>
            <td>{said.join(" — ")}</td>
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<AuditQuery, String> {
        query_of(crate::ui::parts::address_of(pairs))
    }

    #[test]
    fn the_address_reads_as_the_apis_search() {
        let query = from(&[
            ("actor", " ana@example.com "),
            ("action", ""),
            ("since", "2026-12-06T15:30"),
            ("until", "2026-12-07T00:00:00Z"),
            ("before", "42"),
        ])
        .unwrap();
        assert_eq!(query.actor.as_deref(), Some("ana@example.com"));
        assert_eq!(query.action, None);
        assert_eq!(
            query.since.unwrap().to_rfc3339(),
            "2026-12-06T15:30:00+00:00"
        );
        assert_eq!(
            query.until.unwrap().to_rfc3339(),
            "2026-12-07T00:00:00+00:00"
        );
        assert_eq!(query.before, Some(42));
        assert!(from(&[("since", "yesterday")])
            .unwrap_err()
            .contains("since"));
        assert!(from(&[("before", "x")]).unwrap_err().contains("before"));
    }

    #[test]
    fn older_entries_keep_the_filters() {
        let href = older_href(
            |key| match key {
                "actor" => Some("ana@example.com".into()),
                "before" => Some("99".into()),
                _ => None,
            },
            7,
        );
        assert_eq!(
            href,
            "/orchestration/audit?actor=ana%40example.com&before=7"
        );
    }
}
