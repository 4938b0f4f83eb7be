//! The workflow list's filters and paging, shared by the REST API and the page.

use super::forecast::BreachOutlook;
use super::instant::{parse_instant, NotAnInstant};
use super::status::{Tab, WorkflowStatus, COMPLETED_TAB_SIZE};
use super::workflow::Workflow;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Default page size of the list.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page the API serves.
pub const MAX_LIMIT: u32 = 500;

/// The list's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    #[default]
    Newest,
    Oldest,
}

/// Longest free-text search: a whole Temporal workflow id (up to 1,000 bytes) can be
/// searched for.
pub const MAX_SEARCH: usize = 1_000;
/// Shortest free-text search: the full-text index is of three-character pieces, and a
/// shorter text could only be found by reading every run.
pub const MIN_SEARCH: usize = 3;
/// Longest engine id filter.
pub const MAX_ENGINE_LEN: usize = 100;

/// Which workflows to list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ListQuery {
    /// One of the tabs; none = every run.
    #[serde(default)]
    pub tab: Option<Tab>,
    /// Only runs of this engine (`builtin`, `custom:billing`, ...).
    #[serde(default)]
    pub engine: Option<String>,
    /// Runs whose id, type, reference in their engine, trigger or tags contain this text.
    #[serde(default)]
    pub text: Option<String>,
    /// Runs created at or after this instant.
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    /// Runs created before this instant.
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
    #[serde(default)]
    pub sort: Sort,
    /// Any of these statuses; empty = all.
    #[serde(default)]
    pub statuses: Vec<WorkflowStatus>,
    /// Only this workflow type.
    #[serde(default)]
    pub workflow_type: Option<String>,
    /// Only running runs forecast to miss their SLA target (`will_breach=true`).
    #[serde(default)]
    pub will_breach: bool,
    /// Page size, 1..=500 (default 50).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Where the page starts: the `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// A position in the list's stable order (newest first, ties broken by id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_ms: i64,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}~{}", self.created_ms, self.id)
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (ms, id) = s.split_once('~')?;
        let created_ms = ms.parse().ok()?;
        super::is_valid_workflow_id(id).then(|| Self {
            created_ms,
            id: id.to_owned(),
        })
    }
}

/// Why a list query was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("unknown status {0:?}; expected one of PENDING, RUNNING, PAUSING, PAUSED, COMPLETED, FAILED, CANCELLING, CANCELLED, COMPENSATION_FAILED, TERMINATED, TIMED_OUT")]
    UnknownStatus(String),
    #[error("limit must be between 1 and {MAX_LIMIT}, got {0:?}")]
    BadLimit(String),
    #[error("cursor {0:?} is not one this API gave out")]
    BadCursor(String),
    #[error("type must be 1 to {} characters", super::MAX_WORKFLOW_TYPE_LEN)]
    BadType,
    #[error("unknown tab {0:?}; expected active, pending, completed, failed or slow")]
    BadTab(String),
    #[error("engine must be 1 to {MAX_ENGINE_LEN} characters")]
    BadEngine,
    #[error("the search text must be {MIN_SEARCH} to {MAX_SEARCH} characters")]
    BadText,
    #[error("{}", NotAnInstant(.0.clone()))]
    BadDate(String),
    #[error("sort must be newest or oldest, got {0:?}")]
    BadSort(String),
    #[error("will_breach must be true or false, got {0:?}")]
    BadWillBreach(String),
    /// Says which id and why.
    #[error("{0}")]
    BadWorkflowId(String),
}

impl From<NotAnInstant> for QueryError {
    fn from(NotAnInstant(value): NotAnInstant) -> Self {
        Self::BadDate(value)
    }
}

impl ListQuery {
    /// Reads the query-string form: `status=RUNNING,PENDING&type=data_sync&limit=50&cursor=...`.
    pub fn from_params<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, QueryError> {
        let mut query = Self::default();
        for (key, value) in params {
            match key {
                "status" => {
                    for name in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        let status = WorkflowStatus::parse(&name.to_ascii_uppercase())
                            .ok_or_else(|| QueryError::UnknownStatus(name.to_owned()))?;
                        if !query.statuses.contains(&status) {
                            query.statuses.push(status);
                        }
                    }
                }
                "type" if !value.is_empty() => query.workflow_type = Some(value.to_owned()),
                "limit" => {
                    let limit = value
                        .parse::<u32>()
                        .ok()
                        .filter(|l| (1..=MAX_LIMIT).contains(l))
                        .ok_or_else(|| QueryError::BadLimit(value.to_owned()))?;
                    query.limit = Some(limit);
                }
                "tab" if !value.is_empty() => {
                    query.tab = Some(
                        Tab::parse(value).ok_or_else(|| QueryError::BadTab(value.to_owned()))?,
                    );
                }
                "engine" if !value.is_empty() => query.engine = Some(value.to_owned()),
                "q" if !value.trim().is_empty() => query.text = Some(value.trim().to_owned()),
                "from" if !value.is_empty() => query.since = Some(parse_instant(value, false)?),
                "to" if !value.is_empty() => query.until = Some(parse_instant(value, true)?),
                "sort" if !value.is_empty() => {
                    query.sort = match value {
                        "newest" => Sort::Newest,
                        "oldest" => Sort::Oldest,
                        other => return Err(QueryError::BadSort(other.to_owned())),
                    };
                }
                "cursor" if !value.is_empty() => query.cursor = Some(value.to_owned()),
                "will_breach" if !value.is_empty() => {
                    query.will_breach = match value {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        other => return Err(QueryError::BadWillBreach(other.to_owned())),
                    };
                }
                // Unknown parameters are ignored, as browsers and proxies add their own.
                _ => {}
            }
        }
        query.validate()?;
        Ok(query)
    }

    /// Checks the bounds of a query however it arrived (a query string, or a page's
    /// server function, which deserializes it directly).
    pub fn validate(&self) -> Result<(), QueryError> {
        if self
            .workflow_type
            .as_ref()
            .is_some_and(|t| t.is_empty() || t.len() > super::MAX_WORKFLOW_TYPE_LEN)
        {
            return Err(QueryError::BadType);
        }
        if self
            .engine
            .as_ref()
            .is_some_and(|e| e.is_empty() || e.len() > MAX_ENGINE_LEN)
        {
            return Err(QueryError::BadEngine);
        }
        if self
            .text
            .as_ref()
            .is_some_and(|t| !(MIN_SEARCH..=MAX_SEARCH).contains(&t.chars().count()))
        {
            return Err(QueryError::BadText);
        }
        if let Some(limit) = self.limit {
            if !(1..=MAX_LIMIT).contains(&limit) {
                return Err(QueryError::BadLimit(limit.to_string()));
            }
        }
        if let Some(cursor) = &self.cursor {
            if Cursor::decode(cursor).is_none() {
                return Err(QueryError::BadCursor(cursor.chars().take(64).collect()));
            }
        }
        Ok(())
    }

    /// The page size to use.
    pub fn effective_limit(&self) -> u32 {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        if self.tab == Some(Tab::Completed) {
            limit.min(COMPLETED_TAB_SIZE)
        } else {
            limit
        }
    }

    /// The query-string form, the inverse of [`ListQuery::from_params`] (without the
    /// cursor), for links that keep the view.
    pub fn to_params(&self) -> Vec<(&'static str, String)> {
        let mut params = Vec::new();
        if let Some(tab) = self.tab {
            params.push(("tab", tab.as_str().to_owned()));
        }
        if !self.statuses.is_empty() {
            let names: Vec<&str> = self.statuses.iter().map(|s| s.as_str()).collect();
            params.push(("status", names.join(",")));
        }
        for (key, value) in [
            ("type", &self.workflow_type),
            ("engine", &self.engine),
            ("q", &self.text),
        ] {
            if let Some(value) = value {
                params.push((key, value.clone()));
            }
        }
        if let Some(since) = self.since {
            params.push((
                "from",
                since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ));
        }
        if let Some(until) = self.until {
            params.push((
                "to",
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ));
        }
        if self.will_breach {
            params.push(("will_breach", "true".into()));
        }
        if self.sort == Sort::Oldest {
            params.push(("sort", "oldest".into()));
        }
        if let Some(limit) = self.limit {
            params.push(("limit", limit.to_string()));
        }
        params
    }

    /// Whether a workflow belongs in the result (for rows that change live).
    pub fn matches(&self, workflow: &Workflow) -> bool {
        let text_matches = |text: &str| {
            let text = text.to_lowercase();
            [&workflow.id, &workflow.workflow_type]
                .into_iter()
                .chain(workflow.engine_ref.as_ref())
                .chain(workflow.triggered_by.as_ref())
                .chain(workflow.tags.iter())
                .any(|field| field.to_lowercase().contains(&text))
        };
        (self.statuses.is_empty() || self.statuses.contains(&workflow.status))
            && self
                .tab
                .is_none_or(|tab| tab.holds(workflow.status, workflow.sla_status))
            && self
                .workflow_type
                .as_deref()
                .is_none_or(|t| t == workflow.workflow_type)
            && self.engine.as_deref().is_none_or(|e| e == workflow.engine)
            && (!self.will_breach || will_breach(workflow))
            && self.text.as_deref().is_none_or(text_matches)
            && (self.since.is_none() && self.until.is_none()
                || workflow.created_at.is_some_and(|created| {
                    self.since.is_none_or(|since| created >= since)
                        && self.until.is_none_or(|until| created < until)
                }))
    }
}

/// Whether a run is running and forecast to miss its SLA target (the list's "will breach"
/// filter).
pub fn will_breach(workflow: &Workflow) -> bool {
    workflow.status == WorkflowStatus::Running
        && workflow
            .forecast
            .as_ref()
            .is_some_and(|forecast| forecast.breach == BreachOutlook::Likely)
}
