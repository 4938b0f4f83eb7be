//! The Gantt tab of a run's page. The server's SVG paints first (and is all there is
//! without JavaScript); once the app runs, a canvas takes over: it paints only the rows in
//! view (so 10,000 steps scroll smoothly), running bars grow with the clock, and links over
//! the bars of the visible rows give each attempt a tooltip and open its step below.

use super::state::PageState;
use super::step::StepItem;
use crate::gantt::{self, Layout, BAR_HEIGHT};
use crate::model::{fan_outs, WorkflowDetail, WorkflowStatus};
use crate::ui::clock::use_now;
use leptos::prelude::*;
use std::sync::Arc;

/// Width the server's SVG is drawn at before the page knows its own.
const FIRST_PAINT_WIDTH: u32 = 1100;
/// Rows of the server's SVG in the page (the frame shows about 30; the canvas, or the
/// download, shows them all).
const FIRST_PAINT_ROWS: usize = 200;

/// A link over one attempt's bar.
#[derive(Debug, Clone, PartialEq)]
struct Hit {
    step: u32,
    attempt: u32,
    left: f64,
    top: f64,
    width: f64,
    tone: &'static str,
    critical: bool,
    /// The bar of a fan-out's row: a click opens (or closes) the fan-out.
    fan_out: bool,
    tip: Vec<String>,
}

/// The bars of the rows between `top` and `top + height`.
fn hits(layout: &Layout, top: f64, height: f64) -> Vec<Hit> {
    let range = layout.rows_between(top + gantt::AXIS_HEIGHT, top + height);
    layout.rows[range]
        .iter()
        .flat_map(|row| {
            row.bars.iter().map(move |bar| Hit {
                step: row.step_number,
                attempt: bar.attempt,
                left: bar.x0,
                top: row.middle() - BAR_HEIGHT / 2.0,
                width: (bar.x1 - bar.x0).max(2.0),
                tone: bar.tone.as_str(),
                critical: row.critical,
                fan_out: row.fan_out_size.is_some(),
                tip: gantt::tooltip(row, bar),
            })
        })
        .collect()
}

/// The chart's state on the page: the layout, where the frame is scrolled, its size, and
/// the elements painted into.
#[derive(Clone, Copy)]
struct ChartSignals {
    chart: RwSignal<Option<Arc<Layout>>>,
    scroll_top: RwSignal<f64>,
    view_height: RwSignal<f64>,
    width: RwSignal<f64>,
    frame: NodeRef<leptos::html::Div>,
    canvas: NodeRef<leptos::html::Canvas>,
}

impl ChartSignals {
    fn new(state: PageState) -> Self {
        Self {
            chart: RwSignal::new(None),
            scroll_top: RwSignal::new(state.gantt_scroll.get_untracked()),
            view_height: RwSignal::new(0.0),
            width: RwSignal::new(0.0),
            frame: NodeRef::new(),
            canvas: NodeRef::new(),
        }
    }
}

#[component]
pub(super) fn GanttPanel(run: WorkflowDetail, state: PageState) -> impl IntoView {
    let id = run.id.clone();
    let svg_url = format!("/api/platform/orchestration/workflows/{id}/gantt.svg");
    let active = run.status.is_active() || run.status == WorkflowStatus::Pending;
    let now = use_now();
    let signals = ChartSignals::new(state);
    let ChartSignals {
        chart,
        scroll_top,
        view_height,
        width,
        frame,
        canvas,
    } = signals;
    let fan_outs = Arc::new(fan_outs(&run.execution.steps));
    // As the server's SVG lays it out (fan-outs shut), until the page lays it out itself.
    let first_layout = {
        let mut layout = gantt::layout(&run, &[], chrono::Utc::now(), f64::from(FIRST_PAINT_WIDTH));
        layout.collapse_fan_outs(&fan_outs, |_| false);
        layout
    };
    let first_summary = first_layout.summary;
    let height = Signal::derive(move || {
        chart.with(|chart| {
            chart
                .as_ref()
                .map_or(first_layout.height, |layout| layout.height)
        })
    });

    let hovered: RwSignal<Option<Hit>> = RwSignal::new(None);

    #[cfg(feature = "hydrate")]
    client::start(run.clone(), fan_outs.clone(), state, signals, now, active);
    #[cfg(not(feature = "hydrate"))]
    let _ = (now, active, fan_outs);

    let visible_hits = Memo::new(move |_| {
        chart.with(|chart| {
            chart
                .as_ref()
                .map(|layout| hits(layout, scroll_top.get(), view_height.get()))
                .unwrap_or_default()
        })
    });
    let steps = run.execution.steps.clone();
    let selected_step = move || {
        state.gantt_selected.get().and_then(|number| {
            steps
                .iter()
                .find(|s| s.step_number == number)
                .cloned()
                .map(|step| {
                    view! {
                        <section class="gantt-step" data-testid="gantt-step" aria-label="Selected step">
                            <ol class="timeline">
                                <StepItem step label=None state />
                            </ol>
                        </section>
                    }
                })
        })
    };
    let critical_text = move || {
        chart.with(|chart| {
            chart.as_ref().and_then(|layout| {
                (!layout.critical_path.is_empty()).then(|| {
                    let steps: Vec<String> = layout
                        .critical_path
                        .iter()
                        .take(30)
                        .map(|n| n.to_string())
                        .collect();
                    let more = layout.critical_path.len().saturating_sub(30);
                    format!(
                        "Critical path: step {}{}",
                        steps.join(" → "),
                        if more > 0 {
                            format!(" … and {more} more")
                        } else {
                            String::new()
                        }
                    )
                })
            })
        })
    };
    let download = format!("{svg_url}?download=1");
    let first_svg = format!("{svg_url}?width={FIRST_PAINT_WIDTH}&rows={FIRST_PAINT_ROWS}");
    view! {
        <section class="gantt" data-testid="gantt">
            <p class="gantt-summary" data-testid="gantt-summary">
                {move || chart.with(|c| c.as_ref().map(|l| l.summary.clone())).unwrap_or_else(|| first_summary.clone())}
            </p>
            <p class="gantt-critical" data-testid="gantt-critical">{critical_text}</p>
            <div
                class="gantt-frame"
                node_ref=frame
                on:scroll=move |ev| {
                    let top = f64::from(event_target::<leptos::web_sys::Element>(&ev).scroll_top());
                    scroll_top.set(top);
                    state.gantt_scroll.set(top);
                }
            >
                <div class="gantt-track" style:height=move || format!("{}px", height.get())>
                    <canvas
                        node_ref=canvas
                        class="gantt-canvas"
                        data-testid="gantt-canvas"
                        hidden=move || !state.gantt_drawn.get()
                        role="img"
                        aria-label="Gantt chart of the steps"
                    ></canvas>
                    <Show when=move || !state.gantt_drawn.get()>
                        <object
                            class="gantt-svg"
                            data=first_svg.clone()
                            type="image/svg+xml"
                            aria-label="Gantt chart of the steps"
                        >
                            <a href=first_svg.clone()>"Open the Gantt chart"</a>
                        </object>
                    </Show>
                    <div class="gantt-hits">
                        <For
                            each=move || visible_hits.get()
                            key=|hit| (hit.step, hit.attempt, (hit.left * 10.0) as i64, (hit.width * 10.0) as i64, hit.critical)
                            let:hit
                        >
                            {
                                let step = hit.step;
                                let label = hit.tip.join(". ");
                                let shown = hit.clone();
                                view! {
                                    <a
                                        class="gantt-hit"
                                        href=if hit.fan_out { format!("?view=gantt&fan_out={step}") } else { format!("?view=gantt&step={step}") }
                                        data-step=step
                                        data-attempt=hit.attempt
                                        data-tone=hit.tone
                                        data-critical=hit.critical.to_string()
                                        aria-label=label
                                        style:left=format!("{}px", hit.left)
                                        style:top=format!("{}px", hit.top)
                                        style:width=format!("{}px", hit.width)
                                        style:height=format!("{BAR_HEIGHT}px")
                                        on:mouseenter={
                                            let shown = shown.clone();
                                            move |_| hovered.set(Some(shown.clone()))
                                        }
                                        on:focus={
                                            let shown = shown.clone();
                                            move |_| hovered.set(Some(shown.clone()))
                                        }
                                        on:mouseleave=move |_| hovered.set(None)
                                        on:blur=move |_| hovered.set(None)
                                        on:click={
                                            let fan_out = hit.fan_out;
                                            move |ev| {
                                                ev.prevent_default();
                                                if fan_out {
                                                    state.fan_outs_open.update(|open| {
                                                        open.insert(step);
                                                    });
                                                    return;
                                                }
                                                state.expanded.update(|open| {
                                                    open.insert(step);
                                                });
                                                state.gantt_selected.set(Some(step));
                                            }
                                        }
                                    ></a>
                                }
                            }
                        </For>
                    </div>
                    {move || hovered.get().map(|hit| view! {
                        <div
                            class="gantt-tooltip"
                            role="tooltip"
                            data-testid="gantt-tooltip"
                            // Below the bar in the upper half of the chart, above it lower
                            // down, so the frame does not cut it off.
                            style:left=format!("{}px", hit.left.clamp(0.0, (width.get_untracked() - 430.0).max(0.0)))
                            style:top=format!("{}px", if hit.top < height.get_untracked() / 2.0 { hit.top + BAR_HEIGHT + 6.0 } else { hit.top - 6.0 })
                            style:transform=if hit.top < height.get_untracked() / 2.0 { "none" } else { "translateY(-100%)" }
                        >
                            {hit.tip.into_iter().map(|line| view! { <div>{line}</div> }).collect_view()}
                        </div>
                    })}
                </div>
            </div>
            <p class="gantt-links">
                <a href=download download="">"Download SVG"</a>
                {move || state.fan_outs_open.with(|open| !open.is_empty()).then(|| view! {
                    " "
                    <button type="button" data-testid="collapse-fan-outs" on:click=move |_| state.fan_outs_open.set(Default::default())>
                        "Show each fan-out as one row"
                    </button>
                })}
            </p>
            {selected_step}
        </section>
    }
}

#[cfg(feature = "hydrate")]
mod client {
    //! Painting in the browser: layout when the run, the clock (while it runs), the width
    //! or the usual durations change; paint when the layout or the scroll position does.

    use super::*;
    use crate::api::get_step_norms;
    use crate::gantt::{Palette, Viewport};
    use crate::model::FanOut;
    use crate::ui::preferences::{use_preferences, Theme};
    use crate::ui::time::label_gantt_axis;
    use leptos::web_sys;

    /// The chart's colours as the page's stylesheet sets them for the theme shown: each
    /// custom property is read through the element's `color`, which the browser resolves
    /// whatever the theme writes (`light-dark(...)` included).
    fn palette_of(element: &web_sys::HtmlElement) -> Palette {
        let Some(window) = web_sys::window() else {
            return Palette::LIGHT;
        };
        let style = element.style();
        let before = style.get_property_value("color").unwrap_or_default();
        let palette = Palette::from_properties(|name| {
            style.set_property("color", &format!("var({name})")).ok()?;
            window
                .get_computed_style(element)
                .ok()??
                .get_property_value("color")
                .ok()
        });
        let _ = style.set_property("color", &before);
        palette
    }

    fn performance_now() -> f64 {
        web_sys::window()
            .and_then(|w| w.performance())
            .map(|p| p.now())
            .unwrap_or_default()
    }

    pub(super) fn start(
        run: WorkflowDetail,
        fan_outs: Arc<Vec<FanOut>>,
        state: PageState,
        signals: ChartSignals,
        now: ReadSignal<f64>,
        active: bool,
    ) {
        let workflow_type = run.workflow_type.clone();

        // The usual step durations, once per type for as long as the page is open.
        let known = state
            .gantt_norms
            .with_untracked(|n| n.as_ref().is_some_and(|(t, _)| *t == workflow_type));
        if !known {
            leptos::task::spawn_local(async move {
                let norms = get_step_norms(workflow_type.clone())
                    .await
                    .unwrap_or_default();
                // The page may be gone by the time they come (a navigation, a close).
                let _ = state.gantt_norms.try_set(Some((workflow_type, norms)));
            });
        }

        // The frame's size, now and whenever the window's changes.
        let measure = move || {
            if let Some(frame) = signals.frame.get_untracked() {
                signals.width.set(f64::from(frame.client_width()));
                signals.view_height.set(f64::from(frame.client_height()));
            }
        };
        Effect::new(move |_| {
            if let Some(frame) = signals.frame.get() {
                frame.set_scroll_top(signals.scroll_top.get_untracked() as i32);
                measure();
            }
        });
        let resize = window_event_listener(leptos::ev::resize, move |_| measure());
        on_cleanup(move || resize.remove());

        let preferences = use_preferences();
        let theme = Memo::new(move |_| preferences.colours_shown());
        // Read from the stylesheet once per theme, when painting: by then the canvas is in
        // the document (a canvas drawn again after a live re-read is not, when it is made).
        let palette: StoredValue<Option<(Theme, Palette)>> = StoredValue::new(None);
        let axis = Memo::new(move |_| (preferences.choices.get().style, preferences.zone_shown()));

        let layout_ms = RwSignal::new(0.0_f64);
        Effect::new(move |_| {
            let width = signals.width.get();
            if width <= 0.0 {
                return;
            }
            let at = if active {
                now.get()
            } else {
                now.get_untracked()
            };
            let started = performance_now();
            let layout = state.gantt_norms.with(|norms| {
                let norms = norms
                    .as_ref()
                    .filter(|(t, _)| *t == run.workflow_type)
                    .map(|(_, n)| n.as_slice())
                    .unwrap_or_default();
                let at = chrono::DateTime::from_timestamp_millis(at as i64).unwrap_or_default();
                let mut layout = gantt::layout(&run, norms, at, width);
                state.fan_outs_open.with(|open| {
                    layout.collapse_fan_outs(&fan_outs, |first| open.contains(&first))
                });
                let (style, zone) = axis.get();
                label_gantt_axis(&mut layout, style, zone);
                layout
            });
            layout_ms.set(performance_now() - started);
            signals.chart.set(Some(Arc::new(layout)));
        });

        Effect::new(move |_| {
            let top = signals.scroll_top.get();
            let Some(canvas) = signals.canvas.get() else {
                return;
            };
            let Some(layout) = signals.chart.get() else {
                return;
            };
            let started = performance_now();
            let height = signals
                .view_height
                .get_untracked()
                .min(layout.height)
                .max(1.0);
            let theme = theme.get();
            let colors = match palette.get_value() {
                Some((read_for, colors)) if read_for == theme => colors,
                _ if !canvas.is_connected() => Palette::LIGHT,
                _ => {
                    let colors = palette_of(&canvas);
                    palette.set_value(Some((theme, colors)));
                    colors
                }
            };
            match paint(&canvas, &layout, top, height, &colors) {
                Ok(()) => {
                    let ticks: Vec<&str> = layout.ticks.iter().map(|t| t.label.as_str()).collect();
                    let _ = canvas.set_attribute("data-axis", &ticks.join(" | "));
                    let drawn_ms = performance_now() - started;
                    // For the benchmark and for anyone curious: what the last paint cost.
                    let _ = canvas.set_attribute("data-rows", &layout.rows.len().to_string());
                    let _ = canvas.set_attribute(
                        "data-layout-ms",
                        &format!("{:.2}", layout_ms.get_untracked()),
                    );
                    let _ = canvas.set_attribute("data-paint-ms", &format!("{drawn_ms:.2}"));
                    let paints = canvas
                        .get_attribute("data-paints")
                        .and_then(|n| n.parse::<u64>().ok())
                        .unwrap_or(0);
                    if paints == 0 {
                        let _ = canvas.set_attribute(
                            "data-first-paint-at",
                            &format!("{:.1}", performance_now()),
                        );
                    }
                    let _ = canvas.set_attribute("data-paints", &(paints + 1).to_string());
                    state.gantt_drawn.set(true);
                }
                Err(message) => {
                    leptos::logging::warn!("the Gantt chart could not be painted: {message}")
                }
            }
        });
    }

    fn paint(
        canvas: &web_sys::HtmlCanvasElement,
        layout: &Layout,
        top: f64,
        height: f64,
        palette: &Palette,
    ) -> Result<(), String> {
        let scale = web_sys::window()
            .map(|w| w.device_pixel_ratio())
            .unwrap_or(1.0)
            .max(1.0);
        canvas.set_width((layout.width * scale).round() as u32);
        canvas.set_height((height * scale).round() as u32);
        let _ = canvas.set_attribute(
            "style",
            &format!("width:{}px;height:{height}px", layout.width),
        );
        let mut backend = plotters_canvas::CanvasBackend::with_canvas_object(canvas.clone())
            .ok_or("the browser gave no 2D context")?;
        gantt::draw(
            &mut backend,
            layout,
            Viewport { top, height, scale },
            palette,
        )
        .map_err(|e| e.to_string())
    }
}
