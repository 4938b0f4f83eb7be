//! The console's icons: inline SVG drawn from a few strokes, so that they show on every
//! machine (an emoji needs an emoji font, which many Linux desktops and servers lack: the
//! icons were empty boxes there). Each either has an accessible name or, beside a word
//! that says the same, is hidden from screen readers; a status is never told by its icon
//! or its colour alone.

use crate::model::{StepStatus, WorkflowStatus};
use leptos::prelude::*;

/// Every icon the console draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icon {
    Pending,
    Running,
    Paused,
    Completed,
    Failed,
    Cancelling,
    Cancelled,
    Retrying,
    Skipped,
    Pause,
    Resume,
    Retry,
    Clone,
    Terminate,
    Gantt,
    Chart,
}

impl Icon {
    /// The strokes, in a 16 × 16 box (SVG path data).
    fn strokes(self) -> &'static [&'static str] {
        match self {
            // An hourglass.
            Self::Pending => &[
                "M4 2h8",
                "M4 14h8",
                "M5 2c0 4 6 4 6 6s-6 2-6 6",
                "M11 2c0 4-6 4-6 6s6 2 6 6",
            ],
            // A gear: a ring and its teeth.
            Self::Running => &[
                "M8 5.5a2.5 2.5 0 1 0 0 5a2.5 2.5 0 1 0 0-5",
                "M8 1.5v2",
                "M8 12.5v2",
                "M1.5 8h2",
                "M12.5 8h2",
                "M3.4 3.4l1.4 1.4",
                "M11.2 11.2l1.4 1.4",
                "M3.4 12.6l1.4-1.4",
                "M11.2 4.8l1.4-1.4",
            ],
            Self::Paused | Self::Pause => &["M5.5 3v10", "M10.5 3v10"],
            // A tick in a circle.
            Self::Completed => &[
                "M8 1.5a6.5 6.5 0 1 0 0 13a6.5 6.5 0 1 0 0-13",
                "M5 8.2l2 2l4-4.4",
            ],
            // A cross in a circle.
            Self::Failed => &[
                "M8 1.5a6.5 6.5 0 1 0 0 13a6.5 6.5 0 1 0 0-13",
                "M5.5 5.5l5 5",
                "M10.5 5.5l-5 5",
            ],
            // An arrow turning back.
            Self::Cancelling => &["M6 4L3 7l3 3", "M3 7h6.5a3.5 3.5 0 0 1 0 7H7"],
            // A no-entry sign.
            Self::Cancelled => &["M8 1.5a6.5 6.5 0 1 0 0 13a6.5 6.5 0 1 0 0-13", "M4.5 8h7"],
            // Two arrows in a loop.
            Self::Retrying | Self::Retry => &["M13 3v3.5H9.5", "M13 6.5A5.5 5.5 0 1 0 13.5 9.5"],
            // To the next mark.
            Self::Skipped => &["M3 3.5l5 4.5l-5 4.5", "M8 3.5l5 4.5l-5 4.5", "M13.5 3v10"],
            Self::Resume => &["M5 3l8 5l-8 5z"],
            // Two sheets.
            Self::Clone => &["M5.5 5.5h8v8h-8z", "M2.5 10.5v-8h8"],
            Self::Terminate => &["M3.5 3.5h9v9h-9z"],
            // Bars of a Gantt chart.
            Self::Gantt => &["M2 3.5h6", "M5 8h7", "M8 12.5h6"],
            // Columns over an axis.
            Self::Chart => &["M2 14h12", "M4.5 11.5v-3", "M8 11.5v-7", "M11.5 11.5v-5"],
        }
    }
}

/// A run's status as an icon.
pub fn status_icon(status: WorkflowStatus) -> Icon {
    match status {
        WorkflowStatus::Pending => Icon::Pending,
        WorkflowStatus::Running | WorkflowStatus::Pausing => Icon::Running,
        WorkflowStatus::Paused => Icon::Paused,
        WorkflowStatus::Completed => Icon::Completed,
        WorkflowStatus::Failed | WorkflowStatus::CompensationFailed | WorkflowStatus::TimedOut => {
            Icon::Failed
        }
        WorkflowStatus::Cancelling => Icon::Cancelling,
        WorkflowStatus::Cancelled | WorkflowStatus::Terminated => Icon::Cancelled,
    }
}

/// A step's status as an icon.
pub fn step_icon(status: StepStatus) -> Icon {
    match status {
        StepStatus::Pending => Icon::Pending,
        StepStatus::Running => Icon::Running,
        StepStatus::Retrying => Icon::Retrying,
        StepStatus::Completed => Icon::Completed,
        StepStatus::Failed => Icon::Failed,
        StepStatus::Cancelled => Icon::Cancelled,
        StepStatus::Skipped => Icon::Skipped,
    }
}

/// `icon`, drawn in the text's colour at the text's size. With `label`, it is an image of
/// that name; without, it only decorates the word beside it and screen readers skip it.
#[component]
pub fn IconView(icon: Icon, #[prop(optional)] label: Option<String>) -> impl IntoView {
    let hidden = label.is_none().then_some("true");
    let role = label.as_ref().map(|_| "img");
    view! {
        <svg
            class="icon"
            viewBox="0 0 16 16"
            width="1em"
            height="1em"
            fill="none"
            stroke="currentColor"
            stroke-width="1.6"
            stroke-linecap="round"
            stroke-linejoin="round"
            focusable="false"
            role=role
            aria-label=label
            aria-hidden=hidden
        >
            {icon.strokes().iter().map(|d| view! { <path d=*d /> }).collect_view()}
        </svg>
    }
}
