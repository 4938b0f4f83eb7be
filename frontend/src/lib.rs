//! Browser entry point: hydrates the HTML the server rendered into the live app.
#![forbid(unsafe_code)]
// Leptos view types nest deeply; the default limit is too low for the release build.
#![recursion_limit = "256"]

use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
