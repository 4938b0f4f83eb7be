//! The Gantt chart of a run: where its time went. Laid out once ([`layout()`]) and painted
//! by the same code through plotters' backends, as SVG on the server ([`render_svg`]) and
//! on a canvas in the browser.

mod draw;
mod layout;
#[cfg(feature = "ssr")]
mod svg;
#[cfg(test)]
mod tests;

pub use draw::{draw, fit, parse_color, Palette, Viewport};
pub use layout::{
    layout, mark_critical_path, ticks, tooltip, Bar, Layout, Row, SlaLine, Slowness, Tick, Tone,
    Wait, AXIS_HEIGHT, BAR_HEIGHT, FOOTER_HEIGHT, MIN_NORM_OCCURRENCES, ROW_HEIGHT,
};
#[cfg(feature = "ssr")]
pub use svg::{render_svg, SvgLook};
