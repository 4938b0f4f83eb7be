//! Wire types of the orchestration story: what the REST API, the WebSocket and the UI
//! exchange. Serde only, so the same types compile into the browser's WASM.

pub mod alert;
pub mod analytics;
mod command;
mod error;
mod fan_out;
mod forecast;
pub mod identity;
mod instant;
mod live;
mod query;
mod status;
mod workflow;

pub use command::{carried_out, CommandState, EngineCommand};
pub use error::{error_chain, ErrorBody, ErrorKind};
pub use fan_out::{fan_outs, thousands, FanOut, FAN_OUT_COLLAPSE_AT};
pub use forecast::{BreachOutlook, Forecast, MIN_RUNS_FOR_FORECAST};
pub use live::{keep_newest, ClientMessage, LiveEvent, LiveMessage, Subscription, LIVE_ROWS_KEPT};
pub use query::{
    will_breach, Cursor, ListQuery, QueryError, Sort, DEFAULT_LIMIT, MAX_ENGINE_LEN, MAX_LIMIT,
    MAX_SEARCH, MIN_SEARCH,
};
pub use status::{SlaStatus, StepKind, StepStatus, Tab, WorkflowStatus, COMPLETED_TAB_SIZE};
pub use workflow::{
    attempt_label, derive_branches, format_duration, progress_of, Action, ActionResponse, Attempt,
    Branch, Capabilities, DefinitionInfo, EngineHealth, EngineState, Execution, LiveMode, Metadata,
    Priority, Progress, RetryPolicyInfo, Step, StepsPage, TabCounts, WaitReason, Waiting, Workflow,
    WorkflowDetail, WorkflowList, WorkflowStats,
};

/// Longest workflow type stored (longer ones are cut), defined or searched for.
pub const MAX_WORKFLOW_TYPE_LEN: usize = 256;

/// Longest workflow id the API accepts; ids travel in URLs.
pub const MAX_WORKFLOW_ID_LEN: usize = 128;

/// Whether `id` can be used as a workflow id: 1–128 characters from `[A-Za-z0-9._:-]`,
/// so it is stable in URLs without escaping.
pub fn is_valid_workflow_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_WORKFLOW_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Why `id` is refused as a workflow id, for an error message.
pub fn invalid_workflow_id(id: &str) -> String {
    let shown: String = id.chars().take(MAX_WORKFLOW_ID_LEN + 1).collect();
    format!("{shown:?} is not a workflow id (1 to 128 characters of A-Z a-z 0-9 . _ : -)")
}

#[cfg(test)]
mod tests;
