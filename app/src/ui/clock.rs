//! One clock for the pages: the time now, in milliseconds, ticking every second in the
//! browser so running durations count up between live updates.

use leptos::prelude::*;

/// The app's clock: created once at the root (so it outlives every page), shared
/// through the context.
#[derive(Clone, Copy)]
struct Clock(ReadSignal<f64>);

fn now_ms() -> f64 {
    chrono::Utc::now().timestamp_millis() as f64
}

/// Creates the clock; call once, at the root of the app.
pub fn provide_clock() {
    let (now, set_now) = signal(now_ms());
    provide_context(Clock(now));
    #[cfg(feature = "hydrate")]
    {
        // The interval lives as long as the app.
        let _ = set_interval_with_handle(
            move || set_now.set(now_ms()),
            std::time::Duration::from_secs(1),
        );
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = set_now;
}

/// The time now, in milliseconds since the epoch.
pub fn use_now() -> ReadSignal<f64> {
    use_context::<Clock>()
        .map(|clock| clock.0)
        .expect("provide_clock() runs at the root of the app")
}
