//! Stepline's app: the wire model, the pages, and the server functions behind them.
//! Compiled twice: with `ssr` into the server, with `hydrate` into the browser's WASM.
#![forbid(unsafe_code)]
// Leptos view types nest deeply; the default limit is too low for the release build.
#![recursion_limit = "256"]

pub mod api;
pub mod gantt;
pub mod model;
pub mod ui;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags};
use leptos_router::{
    components::{Redirect, Route, Router, Routes},
    path, SsrMode,
};

/// The console's stylesheet (themes included), as the browser asks for it.
pub const STYLESHEET: &str = "/pkg/stepline.css";

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en" data-theme=ui::theme_of_request()>
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                // In the server-rendered shell, not through leptos_meta: its <Stylesheet>
                // broke hydration here (the client looked for it in the body).
                <link rel="stylesheet" id="stepline" href=STYLESHEET />
                <title>"Stepline"</title>
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The app: routes to the orchestration pages.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    ui::provide_signed_in();
    ui::provide_live_connection();
    ui::provide_clock();
    ui::provide_preferences();
    view! {
        <Router>
            <ui::Header />
            <ui::KeyboardShortcuts />
            <main>
                <Routes fallback=ui::NotFound>
                    <Route path=path!("/") view=|| view! { <Redirect path="/orchestration" /> } />
                    // Async: the list is in the HTML itself, readable with JavaScript off.
                    <Route
                        path=path!("/orchestration")
                        view=ui::WorkflowListPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/orchestration/analytics")
                        view=ui::AnalyticsPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/orchestration/alerts")
                        view=ui::AlertInboxPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/orchestration/audit")
                        view=ui::AuditLogPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/orchestration/workflows/:id")
                        view=ui::WorkflowDetailPage
                        ssr=SsrMode::Async
                    />
                </Routes>
            </main>
        </Router>
    }
}
