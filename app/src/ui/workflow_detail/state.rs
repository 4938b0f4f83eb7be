//! What the run page keeps across live re-reads of the run: the open steps, the
//! dialog and its reason, the last action's notice, and the Gantt tab's view.

use crate::model::analytics::StepNorm;
use leptos::prelude::*;
use std::collections::HashSet;

/// What the page tells the operator after an action.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Notice {
    Done(String),
    Failed(String),
}

/// A dialog the actions bar opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialog {
    Cancel,
    Retry,
    Terminate,
}

/// State of the page that outlives each re-read of the run.
#[derive(Clone, Copy)]
pub(super) struct PageState {
    pub(super) expanded: RwSignal<HashSet<u32>>,
    pub(super) notice: RwSignal<Option<Notice>>,
    pub(super) dialog: RwSignal<Option<Dialog>>,
    /// What the operator typed as the open dialog's reason (`None`: its default). Kept
    /// here, not in the dialog, so a live re-read that redraws the dialog keeps it.
    pub(super) dialog_reason: RwSignal<Option<String>>,
    pub(super) busy: RwSignal<bool>,
    /// The Gantt tab: where it was scrolled, whether its canvas has taken over from the
    /// server's SVG, the step opened from a bar, and the type's usual step durations.
    pub(super) gantt_scroll: RwSignal<f64>,
    pub(super) gantt_drawn: RwSignal<bool>,
    pub(super) gantt_selected: RwSignal<Option<u32>>,
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    pub(super) gantt_norms: RwSignal<Option<(String, Vec<StepNorm>)>>,
}
