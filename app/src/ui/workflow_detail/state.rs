//! What the run page keeps across live re-reads of the run: the open steps, the
//! dialog and its reason, the operator's action and its outcome, and the Gantt tab's view.

use crate::api::ActOnWorkflow;
use crate::model::analytics::StepNorm;
use leptos::prelude::*;
use std::collections::{HashMap, HashSet};

/// A dialog the actions bar opened. Without JavaScript its button asks for the page
/// again with `?confirm=<dialog>`, and the server renders it open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialog {
    Cancel,
    Retry,
    Terminate,
}

impl Dialog {
    /// Its value in `?confirm=`.
    pub(super) fn as_query(self) -> &'static str {
        match self {
            Self::Cancel => "cancel",
            Self::Retry => "retry",
            Self::Terminate => "terminate",
        }
    }

    pub(super) fn from_query(value: &str) -> Option<Self> {
        [Self::Cancel, Self::Retry, Self::Terminate]
            .into_iter()
            .find(|dialog| dialog.as_query() == value)
    }
}

/// State of the page that outlives each re-read of the run.
#[derive(Clone, Copy)]
pub(super) struct PageState {
    pub(super) expanded: RwSignal<HashSet<u32>>,
    /// The operator's action: sent by the page's forms (by the browser itself where
    /// JavaScript is off), its outcome shown as the notice.
    pub(super) action: ServerAction<ActOnWorkflow>,
    pub(super) dialog: RwSignal<Option<Dialog>>,
    /// What the operator typed as the open dialog's reason (`None`: its default). Kept
    /// here, not in the dialog, so a live re-read that redraws the dialog keeps it.
    pub(super) dialog_reason: RwSignal<Option<String>>,
    /// The Gantt tab: where it was scrolled, whether its canvas has taken over from the
    /// server's SVG, the step opened from a bar, and the type's usual step durations.
    pub(super) gantt_scroll: RwSignal<f64>,
    pub(super) gantt_drawn: RwSignal<bool>,
    pub(super) gantt_selected: RwSignal<Option<u32>>,
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    pub(super) gantt_norms: RwSignal<Option<(String, Vec<StepNorm>)>>,
    /// The fan-outs shown sibling by sibling (by their first sibling's number), in the
    /// timeline and the Gantt chart alike.
    pub(super) fan_outs_open: RwSignal<HashSet<u32>>,
    /// How many siblings the timeline lists of each fan-out where "Show more" was
    /// pressed. Kept here, not in the fan-out's row, because a live re-read replaces the
    /// row, possibly while its list is being drawn.
    pub(super) fan_outs_listed: RwSignal<HashMap<u32, usize>>,
}
