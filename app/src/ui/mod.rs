//! The pages and their shared pieces.

mod alerts;
mod analytics;
mod audit;
mod clock;
pub mod icons;
mod keyboard;
mod live;
mod parts;
pub mod preferences;
pub mod time;
mod workflow_detail;
mod workflow_list;

pub use alerts::{AlertBadge, AlertInboxPage, RunAlerts};
pub use analytics::AnalyticsPage;
pub use audit::AuditLogPage;
pub use clock::provide_clock;
pub use keyboard::KeyboardShortcuts;
pub use live::{provide_live_connection, ConnectionState, LiveConnection};
pub use preferences::{provide_preferences, theme_of_request, DisplayMenu};
pub use workflow_detail::WorkflowDetailPage;
pub use workflow_list::WorkflowListPage;

use crate::model::identity::{Grants, Me, Role};
use leptos::prelude::*;
use leptos_router::components::A;

/// Who is signed in, read once per page load (it comes with the server-rendered page).
#[derive(Clone, Copy)]
pub struct SignedIn(pub Resource<Result<Option<Me>, crate::model::ErrorBody>>);

/// Provides [`SignedIn`] to the app.
pub fn provide_signed_in() {
    provide_context(SignedIn(Resource::new(|| (), |_| crate::api::who_am_i())));
}

/// Who is signed in, once known (`None` for a visitor, or while it is read).
pub async fn signed_in() -> Option<Me> {
    let SignedIn(me) = use_context::<SignedIn>()?;
    me.await.ok().flatten()
}

/// The top bar: product name, navigation, the live connection's state, and who is
/// signed in with a way to sign out (a plain form: it works without JavaScript).
#[component]
pub fn Header() -> impl IntoView {
    let live = expect_context::<LiveConnection>();
    // Who is signed in, and the audit log's link for operators and admins: one boundary,
    // read once (a second one around the link in the navigation failed to hydrate at
    // random, and with it every live update of the page).
    let who = move || {
        Suspend::new(async move {
            signed_in().await.map(|me| {
                let shown = me.display_name.clone().unwrap_or_else(|| me.actor.clone());
                let audit = me.holds_somewhere(Role::Operator).then(|| {
                    view! { <a class="audit-link" href="/orchestration/audit">"Audit"</a> }
                });
                view! {
                    {audit}
                    <span class="who" data-testid="signed-in-as" title=me.actor.clone()>{shown}</span>
                    <form method="post" action="/api/auth/sign-out" class="sign-out">
                        <button type="submit" data-testid="sign-out">"Sign out"</button>
                    </form>
                }
            })
        })
    };
    view! {
        <header class="topbar">
            <A href="/orchestration" attr:class="brand">
                <icons::IconView icon=icons::Icon::Running /> " Stepline"
            </A>
            <nav>
                <A href="/orchestration" exact=true>"Workflows"</A>
                <A href="/orchestration/analytics">"Analytics"</A>
                <AlertBadge />
            </nav>
            <span
                class="connection"
                data-state=move || live.state.get().as_str()
                title="Live updates"
            >
                {move || live.state.get().label()}
            </span>
            <DisplayMenu />
            <Transition fallback=|| ()>{who}</Transition>
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
