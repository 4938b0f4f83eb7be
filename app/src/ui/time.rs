//! Every instant the console shows, written as the viewer chose: "2026-12-07 21:31:56"
//! in their zone or in UTC, or "3 min ago"; hovering shows it the other way. Exports
//! are not written here: they keep UTC.

use super::clock::use_now;
use super::preferences::{use_preferences, TimeStyle, Zone};
use chrono::{DateTime, Local, SecondsFormat, Utc};
use leptos::prelude::*;

/// How much of an absolute time is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeForm {
    /// Date and time of day: "2026-12-07 21:31:56".
    #[default]
    DateTime,
    /// The time of day only, where the day is plain: "21:31:56".
    Clock,
}

impl TimeForm {
    fn pattern(self) -> &'static str {
        match self {
            TimeForm::DateTime => "%Y-%m-%d %H:%M:%S",
            TimeForm::Clock => "%H:%M:%S",
        }
    }
}

/// `at` written in `zone` with no word for the zone (where it is said once, as on the
/// Gantt chart's axis).
pub fn bare_time(at: DateTime<Utc>, form: TimeForm, zone: Zone) -> String {
    match zone {
        Zone::Utc => at.format(form.pattern()).to_string(),
        Zone::Local => at.with_timezone(&Local).format(form.pattern()).to_string(),
    }
}

/// `at` as a date and time in `zone` ("... UTC" when it is UTC, so it is never mistaken).
pub fn absolute_time(at: DateTime<Utc>, form: TimeForm, zone: Zone) -> String {
    match zone {
        Zone::Utc => format!("{} UTC", bare_time(at, form, zone)),
        Zone::Local => bare_time(at, form, zone),
    }
}

/// Labels the Gantt chart's axis as the viewer chose: the time of day in their zone for
/// absolute times, the time since the run began (as laid out) for relative ones.
pub fn label_gantt_axis(layout: &mut crate::gantt::Layout, style: TimeStyle, zone: Zone) {
    if style == TimeStyle::Absolute {
        let clock = |ms: i64| {
            DateTime::from_timestamp_millis(ms)
                .map(|at| bare_time(at, TimeForm::Clock, zone))
                .unwrap_or_default()
        };
        let zone_word = match zone {
            Zone::Utc => "UTC",
            Zone::Local => "local",
        };
        layout.label_ticks_with_clock(clock, zone_word);
    }
}

/// `at` seen from `now_ms`, coarse as people say it: "just now", "45 s ago", "3 min
/// ago", "2 h 5 min ago", "4 d ago", "in 10 min".
pub fn relative_time(at: DateTime<Utc>, now_ms: f64) -> String {
    let seconds = (now_ms - at.timestamp_millis() as f64) / 1000.0;
    let whole = seconds.abs().floor() as u64;
    if whole < 1 {
        return "just now".to_owned();
    }
    let span = match whole {
        0..60 => format!("{whole} s"),
        60..3600 => format!("{} min", whole / 60),
        3600..86400 if whole % 3600 >= 60 => {
            format!("{} h {} min", whole / 3600, (whole % 3600) / 60)
        }
        3600..86400 => format!("{} h", whole / 3600),
        _ => format!("{} d", whole / 86400),
    };
    if seconds > 0.0 {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

/// `at` as the viewer chose, and the other way for the hover.
pub fn time_words(
    at: DateTime<Utc>,
    form: TimeForm,
    style: TimeStyle,
    zone: Zone,
    now_ms: f64,
) -> (String, String) {
    let absolute = absolute_time(at, form, zone);
    let full = match zone {
        // Local times say on hover what they are in UTC.
        Zone::Local => format!(
            "{} ({})",
            absolute_time(at, TimeForm::DateTime, zone),
            absolute_time(at, TimeForm::DateTime, Zone::Utc)
        ),
        Zone::Utc => absolute_time(at, TimeForm::DateTime, zone),
    };
    match style {
        TimeStyle::Absolute => (absolute, format!("{} • {full}", relative_time(at, now_ms))),
        TimeStyle::Relative => (relative_time(at, now_ms), full),
    }
}

/// An instant on a page: a `<time>` whose words follow the viewer's choices (and, when
/// relative, the clock). An absolute time does not follow the clock: its hover text
/// ("3 min ago") is brought up to date when the pointer comes to it.
#[component]
pub fn Time(
    at: DateTime<Utc>,
    #[prop(optional)] form: TimeForm,
    #[prop(optional)] testid: Option<&'static str>,
) -> impl IntoView {
    let preferences = use_preferences();
    let now = use_now();
    let pointed_at = ArcTrigger::new();
    let words = Memo::new({
        let pointed_at = pointed_at.clone();
        move |_| {
            let choices = preferences.choices.get();
            let now = match choices.style {
                TimeStyle::Relative => now.get(),
                TimeStyle::Absolute => {
                    pointed_at.track();
                    now.get_untracked()
                }
            };
            time_words(at, form, choices.style, preferences.zone_shown(), now)
        }
    });
    view! {
        <time
            datetime=at.to_rfc3339_opts(SecondsFormat::Millis, true)
            title=move || words.with(|(_, other)| other.clone())
            data-testid=testid
            on:mouseenter=move |_| pointed_at.notify()
        >
            {move || words.with(|(shown, _)| shown.clone())}
        </time>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_time_reads_as_chosen_and_the_hover_reads_it_the_other_way() {
        let at = Utc.with_ymd_and_hms(2026, 12, 7, 21, 31, 56).unwrap();
        let now = (at.timestamp_millis() + 190_000) as f64;
        let (shown, other) =
            time_words(at, TimeForm::DateTime, TimeStyle::Absolute, Zone::Utc, now);
        assert_eq!(shown, "2026-12-07 21:31:56 UTC");
        assert_eq!(other, "3 min ago • 2026-12-07 21:31:56 UTC");
        let (shown, other) = time_words(at, TimeForm::Clock, TimeStyle::Relative, Zone::Utc, now);
        assert_eq!(shown, "3 min ago");
        assert_eq!(other, "2026-12-07 21:31:56 UTC");
        assert_eq!(
            relative_time(at, (at.timestamp_millis() - 45_000) as f64),
            "in 45 s"
        );
        assert_eq!(relative_time(at, at.timestamp_millis() as f64), "just now");
        let later = |seconds: i64| (at.timestamp_millis() + seconds * 1000) as f64;
        assert_eq!(relative_time(at, later(7_500)), "2 h 5 min ago");
        assert_eq!(relative_time(at, later(7_200)), "2 h ago");
        assert_eq!(relative_time(at, later(4 * 86_400 + 5)), "4 d ago");
    }
}
