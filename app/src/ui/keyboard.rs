//! The console's keyboard shortcuts: `/` to the search, `j` / `k` through the runs of a
//! list or the steps of a run (the focused one opens with `Enter`, as any link or step
//! does), `g` then `l` or `a` to the list or analytics, `?` for the list of shortcuts.
//! A key typed into a field is the field's, and a key with Ctrl, Alt or Meta is the
//! browser's.

use leptos::prelude::*;

/// The shortcuts, as the help lists them.
pub const SHORTCUTS: &[(&str, &str)] = &[
    ("/", "Search the runs"),
    ("j / k", "Next / previous run or step"),
    ("Enter", "Open the run, or open and close the step"),
    ("g then l", "Go to the list of runs"),
    ("g then a", "Go to analytics"),
    ("?", "Show or hide these shortcuts"),
    ("Esc", "Close"),
];

/// What `j` and `k` move through: the runs of a list (their links), the steps of a run.
#[cfg(feature = "hydrate")]
const ROWS: &str =
    "tr[data-workflow-id] td.id a, li[data-step] > details > summary, li[data-fan-out] > details > summary";

/// Listens for the shortcuts on the whole page, and shows their list on `?`.
#[component]
pub fn KeyboardShortcuts() -> impl IntoView {
    let help = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    {
        let after_g = StoredValue::new(false);
        let navigate = leptos_router::hooks::use_navigate();
        let listener = window_event_listener(leptos::ev::keydown, move |event| {
            on_key(&event, help, after_g, &navigate);
        });
        on_cleanup(move || listener.remove());
    }
    view! {
        <Show when=move || help.get()>
            <div class="dialog shortcuts" role="dialog" aria-modal="true" aria-labelledby="shortcuts-title">
                <p id="shortcuts-title" class="dialog-title">"Keyboard shortcuts"</p>
                <dl>
                    {SHORTCUTS
                        .iter()
                        .map(|(keys, what)| view! { <dt><kbd>{*keys}</kbd></dt><dd>{*what}</dd> })
                        .collect_view()}
                </dl>
                <div class="dialog-buttons">
                    <button type="button" autofocus=true on:click=move |_| help.set(false)>"Close"</button>
                </div>
            </div>
        </Show>
    }
}

#[cfg(feature = "hydrate")]
fn on_key(
    event: &leptos::ev::KeyboardEvent,
    help: RwSignal<bool>,
    after_g: StoredValue<bool>,
    navigate: &impl Fn(&str, leptos_router::NavigateOptions),
) {
    use wasm_bindgen::JsCast;
    if event.ctrl_key() || event.alt_key() || event.meta_key() || event.default_prevented() {
        return;
    }
    let key = event.key();
    if key == "Escape" {
        help.set(false);
        after_g.set_value(false);
        return;
    }
    let typing = event
        .target()
        .and_then(|target| target.dyn_into::<web_sys::HtmlElement>().ok())
        .is_some_and(|element| {
            matches!(element.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
                || element.is_content_editable()
        });
    if typing {
        return;
    }
    if after_g.get_value() {
        after_g.set_value(false);
        let to = match key.as_str() {
            "l" => Some("/orchestration"),
            "a" => Some("/orchestration/analytics"),
            _ => None,
        };
        if let Some(to) = to {
            event.prevent_default();
            navigate(to, Default::default());
        }
        return;
    }
    let Some(document) = web_sys::window().and_then(|window| window.document()) else {
        return;
    };
    match key.as_str() {
        "/" => {
            if let Some(search) = document
                .query_selector("input[type=search]")
                .ok()
                .flatten()
                .and_then(|element| element.dyn_into::<web_sys::HtmlElement>().ok())
            {
                event.prevent_default();
                let _ = search.focus();
            }
        }
        "j" | "k" => {
            let Ok(rows) = document.query_selector_all(ROWS) else {
                return;
            };
            let rows: Vec<web_sys::HtmlElement> = (0..rows.length())
                .filter_map(|i| rows.item(i))
                .filter_map(|node| node.dyn_into::<web_sys::HtmlElement>().ok())
                .collect();
            if rows.is_empty() {
                return;
            }
            let focused = document.active_element();
            let at = rows.iter().position(|row| {
                focused
                    .as_ref()
                    .is_some_and(|f| f == row.as_ref() as &web_sys::Element)
            });
            let next = match (at, key.as_str()) {
                (None, "j") => 0,
                (None, _) => rows.len() - 1,
                (Some(at), "j") => (at + 1).min(rows.len() - 1),
                (Some(at), _) => at.saturating_sub(1),
            };
            event.prevent_default();
            let _ = rows[next].focus();
        }
        "g" => after_g.set_value(true),
        "?" => {
            event.prevent_default();
            help.update(|shown| *shown = !*shown);
        }
        _ => {}
    }
}
