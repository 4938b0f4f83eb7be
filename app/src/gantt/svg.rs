//! The Gantt chart as a standalone SVG document (first paint without JavaScript, and
//! download): plotters' SVG backend paints it, and each attempt's bar gets a link to its
//! step and a native tooltip on top.

use super::draw::{draw, Viewport};
use super::layout::{tooltip, Layout, BAR_HEIGHT};
use html_escape::{encode_double_quoted_attribute, encode_text};
use plotters_backend::DrawingBackend;
use plotters_svg::SVGBackend;
use std::fmt::Write;

/// The SVG of `layout`. `step_href` is where a click on step N's bar leads.
pub fn render_svg(layout: &Layout, title: &str, step_href: impl Fn(u32) -> String) -> String {
    let (width, height) = (layout.width.ceil() as u32, layout.height.ceil() as u32);
    let mut painted = String::with_capacity(256 * layout.rows.len() + 4096);
    {
        let mut backend = SVGBackend::with_string(&mut painted, (width, height));
        // Writing into a String cannot fail; an error here would be a bug in the layout,
        // and the links below still make a usable document.
        let _ = draw(&mut backend, layout, Viewport::whole(layout));
        let _ = backend.present();
    }
    // plotters closes the document; the links go inside it, on top of the painting.
    let body = painted
        .trim_end()
        .strip_suffix("</svg>")
        .unwrap_or(&painted);
    let mut out = String::with_capacity(body.len() + 400 * layout.rows.len() + 256);
    match body.split_once('\n') {
        Some((open, rest)) => {
            out.push_str(open);
            let _ = write!(
                out,
                "\n<title>{}</title>\n<style>a rect{{cursor:pointer}}a:hover rect,a:focus rect{{stroke:#111827;stroke-width:2}}</style>\n",
                encode_text(title)
            );
            out.push_str(rest);
        }
        None => out.push_str(body),
    }
    for row in &layout.rows {
        let href = step_href(row.step_number);
        let top = row.middle() - BAR_HEIGHT / 2.0;
        for bar in &row.bars {
            let tip = tooltip(row, bar).join("\n");
            let _ = writeln!(
                out,
                r#"<a href="{href}" target="_top" class="bar" data-step="{step}" data-attempt="{attempt}" data-tone="{tone}" data-critical="{critical}"><rect x="{x:.1}" y="{top:.1}" width="{w:.1}" height="{h}" fill="transparent"/><title>{tip}</title></a>"#,
                href = encode_double_quoted_attribute(&href),
                step = row.step_number,
                attempt = bar.attempt,
                tone = bar.tone.as_str(),
                critical = row.critical,
                x = bar.x0,
                w = (bar.x1 - bar.x0).max(2.0),
                h = BAR_HEIGHT,
                tip = encode_text(&tip),
            );
        }
    }
    out.push_str("</svg>\n");
    out
}
