//! What each viewer chooses for the console's look: the theme (the system's, light, dark
//! or high contrast) and how times read (relative or absolute, local or UTC). Kept in
//! cookies, so the server renders a page the way the browser then keeps it, and the choice
//! is remembered from one visit to the next.

use leptos::prelude::*;

/// One of the things a viewer chooses, with its value in the cookie and its words in the
/// menu.
pub trait Choice: Copy + PartialEq + Send + Sync + 'static {
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
    fn label(self) -> &'static str;

    fn parse(value: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == value)
    }
}

/// The console's colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Theme {
    /// Light or dark as the operating system is set.
    #[default]
    System,
    Light,
    Dark,
    /// Black and white with strong colours and outlines.
    Contrast,
}

impl Choice for Theme {
    const ALL: &'static [Self] = &[Theme::System, Theme::Light, Theme::Dark, Theme::Contrast];

    fn as_str(self) -> &'static str {
        match self {
            Theme::System => "system",
            Theme::Light => "light",
            Theme::Dark => "dark",
            Theme::Contrast => "contrast",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Theme::System => "As the system",
            Theme::Light => "Light",
            Theme::Dark => "Dark",
            Theme::Contrast => "High contrast",
        }
    }
}

/// How a time reads: "3 min ago" or "2026-12-07 21:31:56".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeStyle {
    #[default]
    Absolute,
    Relative,
}

impl Choice for TimeStyle {
    const ALL: &'static [Self] = &[TimeStyle::Absolute, TimeStyle::Relative];

    fn as_str(self) -> &'static str {
        match self {
            TimeStyle::Absolute => "absolute",
            TimeStyle::Relative => "relative",
        }
    }

    fn label(self) -> &'static str {
        match self {
            TimeStyle::Absolute => "Date and time",
            TimeStyle::Relative => "Time ago",
        }
    }
}

/// The time zone absolute times are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Zone {
    /// The browser's own.
    #[default]
    Local,
    Utc,
}

impl Choice for Zone {
    const ALL: &'static [Self] = &[Zone::Local, Zone::Utc];

    fn as_str(self) -> &'static str {
        match self {
            Zone::Local => "local",
            Zone::Utc => "utc",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Zone::Local => "Local time",
            Zone::Utc => "UTC",
        }
    }
}

/// One viewer's choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Choices {
    pub theme: Theme,
    pub style: TimeStyle,
    pub zone: Zone,
}

const THEME_COOKIE: &str = "stepline_theme";
const STYLE_COOKIE: &str = "stepline_time";
const ZONE_COOKIE: &str = "stepline_zone";

impl Choices {
    /// The choices a `Cookie` header (or `document.cookie`) holds; what is missing or not
    /// understood keeps its default.
    pub fn from_cookies(cookies: &str) -> Self {
        let mut choices = Self::default();
        for pair in cookies.split(';') {
            let Some((name, value)) = pair.trim().split_once('=') else {
                continue;
            };
            match name {
                THEME_COOKIE => choices.theme = Theme::parse(value).unwrap_or(choices.theme),
                STYLE_COOKIE => choices.style = TimeStyle::parse(value).unwrap_or(choices.style),
                ZONE_COOKIE => choices.zone = Zone::parse(value).unwrap_or(choices.zone),
                _ => {}
            }
        }
        choices
    }

    /// The cookies that keep these choices for a year.
    pub fn to_cookies(self) -> [String; 3] {
        let cookie = |name: &str, value: &str| {
            format!("{name}={value}; Path=/; Max-Age=31536000; SameSite=Lax")
        };
        [
            cookie(THEME_COOKIE, self.theme.as_str()),
            cookie(STYLE_COOKIE, self.style.as_str()),
            cookie(ZONE_COOKIE, self.zone.as_str()),
        ]
    }
}

/// The viewer's choices for the pages, through the context.
#[derive(Clone, Copy)]
pub struct Preferences {
    pub choices: RwSignal<Choices>,
    /// Whether the browser's time zone can be used: not while the server renders (it does
    /// not know it) nor while the page hydrates (it must read as the server wrote it), so
    /// local times read as UTC until the app runs.
    local_known: RwSignal<bool>,
    /// Whether the operating system asks for dark colours (as the browser says, and as it
    /// changes): what the page shows while the theme is "as the system".
    pub system_dark: RwSignal<bool>,
}

impl Preferences {
    /// The colours shown: the theme chosen, or light or dark as the system is set. What
    /// paints itself (the Gantt canvas) paints again when this changes.
    pub fn colours_shown(&self) -> Theme {
        match self.choices.with(|c| c.theme) {
            Theme::System if self.system_dark.get() => Theme::Dark,
            Theme::System => Theme::Light,
            chosen => chosen,
        }
    }

    /// The zone times are written in now.
    pub fn zone_shown(&self) -> Zone {
        match self.choices.get().zone {
            Zone::Local if self.local_known.get() => Zone::Local,
            _ => Zone::Utc,
        }
    }

    /// Keeps `choices` (in the cookies) and shows the page by them.
    pub fn choose(&self, choices: Choices) {
        // The root's theme first: what repaints on the change reads the new colours.
        #[cfg(feature = "hydrate")]
        browser::keep(choices);
        self.choices.set(choices);
    }
}

/// The choices the request (on the server) or the browser's cookies hold.
fn read_choices() -> Choices {
    #[cfg(feature = "ssr")]
    {
        use_context::<http::request::Parts>()
            .map(|request| {
                let cookies: Vec<&str> = request
                    .headers
                    .get_all(http::header::COOKIE)
                    .iter()
                    .filter_map(|value| value.to_str().ok())
                    .collect();
                Choices::from_cookies(&cookies.join("; "))
            })
            .unwrap_or_default()
    }
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    {
        Choices::from_cookies(&browser::cookies())
    }
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    {
        Choices::default()
    }
}

/// The `data-theme` of the page's root for this request (the shell writes it, so the
/// first paint already has the chosen colours).
pub fn theme_of_request() -> &'static str {
    read_choices().theme.as_str()
}

/// Provides [`Preferences`] to the app; call once, at its root.
pub fn provide_preferences() {
    let preferences = Preferences {
        choices: RwSignal::new(read_choices()),
        local_known: RwSignal::new(false),
        system_dark: RwSignal::new(false),
    };
    // Effects run in the browser only, once the page is hydrated.
    Effect::new(move |_| {
        preferences.local_known.set(true);
        #[cfg(feature = "hydrate")]
        browser::follow_system_colours(preferences.system_dark);
    });
    provide_context(preferences);
}

/// The viewer's choices.
pub fn use_preferences() -> Preferences {
    expect_context::<Preferences>()
}

#[cfg(feature = "hydrate")]
mod browser {
    //! The cookies and the page's root, in the browser.

    use super::{Choice, Choices};
    use leptos::wasm_bindgen::JsCast;
    use leptos::web_sys;

    fn html_document() -> Option<web_sys::HtmlDocument> {
        web_sys::window()?.document()?.dyn_into().ok()
    }

    pub(super) fn cookies() -> String {
        html_document()
            .and_then(|document| document.cookie().ok())
            .unwrap_or_default()
    }

    /// Keeps `dark` to whether the system asks for dark colours, for the app's lifetime.
    pub(super) fn follow_system_colours(dark: leptos::prelude::RwSignal<bool>) {
        use leptos::prelude::Set;
        use leptos::wasm_bindgen::closure::Closure;
        let Some(query) = web_sys::window().and_then(|window| {
            window
                .match_media("(prefers-color-scheme: dark)")
                .ok()
                .flatten()
        }) else {
            return;
        };
        dark.set(query.matches());
        let changed = Closure::<dyn Fn(web_sys::MediaQueryListEvent)>::new(
            move |event: web_sys::MediaQueryListEvent| dark.set(event.matches()),
        );
        let _ = query.add_event_listener_with_callback("change", changed.as_ref().unchecked_ref());
        // The app's root holds the preferences as long as the page lives: so does this.
        changed.forget();
    }

    pub(super) fn keep(choices: Choices) {
        let Some(document) = html_document() else {
            return;
        };
        for cookie in choices.to_cookies() {
            let _ = document.set_cookie(&cookie);
        }
        if let Some(root) = document.document_element() {
            let _ = root.set_attribute("data-theme", choices.theme.as_str());
        }
    }
}

/// One choice of the menu: a labelled list of its values.
fn choice_select<T: Choice>(
    label: &'static str,
    testid: &'static str,
    get: fn(Choices) -> T,
    set: fn(Choices, T) -> Choices,
) -> impl IntoView {
    let preferences = use_preferences();
    let choices = preferences.choices;
    view! {
        <label>
            <span>{label}</span>
            <select
                data-testid=testid
                on:change=move |ev| {
                    if let Some(value) = T::parse(&event_target_value(&ev)) {
                        preferences.choose(set(choices.get_untracked(), value));
                    }
                }
            >
                {T::ALL
                    .iter()
                    .map(|&value| {
                        view! {
                            <option value=value.as_str() selected=move || get(choices.get()) == value>
                                {value.label()}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
        </label>
    }
}

/// The header's menu of display choices: theme, and how times read.
#[component]
pub fn DisplayMenu() -> impl IntoView {
    view! {
        <details class="display-menu" data-testid="display-menu">
            <summary>"Display"</summary>
            <div class="display-choices">
                {choice_select("Theme", "theme-choice", |c| c.theme, |c, theme| Choices { theme, ..c })}
                {choice_select("Times", "time-style-choice", |c| c.style, |c, style| Choices { style, ..c })}
                {choice_select("Time zone", "time-zone-choice", |c| c.zone, |c, zone| Choices { zone, ..c })}
            </div>
        </details>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_come_back_from_their_cookies_and_unknown_values_keep_the_defaults() {
        let chosen = Choices {
            theme: Theme::Contrast,
            style: TimeStyle::Relative,
            zone: Zone::Utc,
        };
        let header: Vec<String> = chosen
            .to_cookies()
            .iter()
            .map(|c| c.split(';').next().unwrap().to_owned())
            .collect();
        let header = format!("session=abc; {}", header.join("; "));
        assert_eq!(Choices::from_cookies(&header), chosen);
        assert_eq!(
            Choices::from_cookies("stepline_theme=purple; stepline_zone=mars; x"),
            Choices::default()
        );
        assert_eq!(Choices::from_cookies(""), Choices::default());
    }
}
