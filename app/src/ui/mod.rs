//! The pages and their shared pieces.

mod analytics;
mod clock;
mod live;
mod parts;
mod workflow_detail;
mod workflow_list;

pub use analytics::AnalyticsPage;
pub use clock::provide_clock;
pub use live::{provide_live_connection, ConnectionState, LiveConnection};
pub use workflow_detail::WorkflowDetailPage;
pub use workflow_list::WorkflowListPage;

use leptos::prelude::*;
use leptos_router::components::A;

/// The top bar: product name, navigation and the live connection's state.
#[component]
pub fn Header() -> impl IntoView {
    let live = expect_context::<LiveConnection>();
    view! {
        <header class="topbar">
            <A href="/orchestration" attr:class="brand">
                "⚙️ Stepline"
            </A>
            <nav>
                <A href="/orchestration" exact=true>"Workflows"</A>
                <A href="/orchestration/analytics">"Analytics"</A>
            </nav>
            <span
                class="connection"
                data-state=move || live.state.get().as_str()
                title="Live updates"
            >
                {move || live.state.get().label()}
            </span>
        </header>
    }
}

/// Shown for any path we do not serve.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <section class="empty">
            <h1>"Page not found"</h1>
            <p>
                <A href="/orchestration">"Back to the workflows"</A>
            </p>
        </section>
    }
}
