//! The workflow list's filters and paging, shared by the REST API and the page.

use super::status::WorkflowStatus;
use serde::{Deserialize, Serialize};

/// Default page size of the list.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page the API serves.
pub const MAX_LIMIT: u32 = 500;

/// Which workflows to list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ListQuery {
    /// Any of these statuses; empty = all.
    #[serde(default)]
    pub statuses: Vec<WorkflowStatus>,
    /// Only this workflow type.
    #[serde(default)]
    pub workflow_type: Option<String>,
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
    #[error("type must be 1 to 100 characters")]
    BadType,
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
                "type" if !value.is_empty() => {
                    if value.len() > 100 {
                        return Err(QueryError::BadType);
                    }
                    query.workflow_type = Some(value.to_owned());
                }
                "limit" => {
                    let limit = value
                        .parse::<u32>()
                        .ok()
                        .filter(|l| (1..=MAX_LIMIT).contains(l))
                        .ok_or_else(|| QueryError::BadLimit(value.to_owned()))?;
                    query.limit = Some(limit);
                }
                "cursor" if !value.is_empty() => {
                    Cursor::decode(value).ok_or_else(|| QueryError::BadCursor(value.to_owned()))?;
                    query.cursor = Some(value.to_owned());
                }
                // Unknown parameters are ignored, as browsers and proxies add their own.
                _ => {}
            }
        }
        Ok(query)
    }

    /// The page size to use.
    pub fn effective_limit(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
    }

    /// Whether a workflow of this status and type belongs in the result.
    pub fn matches(&self, status: WorkflowStatus, workflow_type: &str) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&status))
            && self
                .workflow_type
                .as_deref()
                .is_none_or(|t| t == workflow_type)
    }
}
