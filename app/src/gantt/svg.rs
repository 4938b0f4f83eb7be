//! The Gantt chart as a standalone SVG document (first paint without JavaScript, and
//! download): plotters' SVG backend paints it, and each attempt's bar gets a link to its
//! step and a native tooltip on top. Its colours are the page's stylesheet's, so it
//! follows the theme; a document read without the stylesheet is light.

use super::draw::{draw, Palette, Viewport};
use super::layout::{tooltip, Layout, BAR_HEIGHT};
use html_escape::{encode_double_quoted_attribute, encode_text};
use plotters_backend::DrawingBackend;
use plotters_svg::SVGBackend;
use std::fmt::Write;

/// How the document finds its colours: the stylesheet that holds them and the theme it
/// shows (`data-theme` on its root, as on the page's).
#[derive(Debug, Clone, Copy, Default)]
pub struct SvgLook<'a> {
    pub stylesheet: Option<&'a str>,
    pub theme: &'a str,
}

/// plotters writes each colour as `fill="#RRGGBB"` or `stroke="#RRGGBB"`: each of the
/// palette's becomes its custom property, with the light colour where none is set. One
/// pass over the document, whatever its size (a download of 10,000 rows).
fn themed(painted: &str) -> String {
    let properties: Vec<(String, &str)> = Palette::SLOTS
        .iter()
        .map(|(property, slot)| {
            let mut light = Palette::LIGHT;
            let (r, g, b) = slot(&mut light).rgb;
            (format!("#{r:02X}{g:02X}{b:02X}"), *property)
        })
        .collect();
    let property_of = |hex: &str| {
        properties
            .iter()
            .find(|(colour, _)| colour == hex)
            .map(|(_, property)| *property)
    };
    let mut out = String::with_capacity(painted.len() + painted.len() / 4);
    let mut rest = painted;
    // Each `="#` is where a colour may be written; `="#RRGGBB"` is ten bytes.
    while let Some(at) = rest.find("=\"#") {
        let (before, after) = rest.split_at(at);
        let attribute = ["fill", "stroke"].into_iter().find(|attribute| {
            before
                .strip_suffix(attribute)
                .is_some_and(|start| start.ends_with(' '))
        });
        let colour = after
            .get(2..9)
            .filter(|_| after.as_bytes().get(9) == Some(&b'"'));
        match (
            attribute,
            colour.and_then(|hex| property_of(hex).map(|p| (hex, p))),
        ) {
            (Some(attribute), Some((hex, property))) => {
                out.push_str(&before[..before.len() - attribute.len()]);
                let _ = write!(out, r#"style="{attribute}:var({property},{hex})""#);
                rest = &after[10..];
            }
            _ => {
                out.push_str(&rest[..at + 3]);
                rest = &rest[at + 3..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The SVG of `layout`. `step_href` is where a click on step N's bar leads.
pub fn render_svg(
    layout: &Layout,
    title: &str,
    look: SvgLook<'_>,
    step_href: impl Fn(u32) -> String,
) -> String {
    let (width, height) = (layout.width.ceil() as u32, layout.height.ceil() as u32);
    let mut painted = String::with_capacity(256 * layout.rows.len() + 4096);
    {
        let mut backend = SVGBackend::with_string(&mut painted, (width, height));
        // Writing into a String cannot fail; an error here would be a bug in the layout,
        // and the links below still make a usable document.
        let _ = draw(
            &mut backend,
            layout,
            Viewport::whole(layout),
            &Palette::LIGHT,
        );
        let _ = backend.present();
    }
    let painted = themed(&painted);
    // plotters closes the document; the links go inside it, on top of the painting.
    let body = painted
        .trim_end()
        .strip_suffix("</svg>")
        .unwrap_or(&painted);
    let mut out = String::with_capacity(body.len() + 400 * layout.rows.len() + 256);
    if let Some(stylesheet) = look.stylesheet {
        let _ = writeln!(
            out,
            r#"<?xml-stylesheet href="{}" type="text/css"?>"#,
            encode_double_quoted_attribute(stylesheet)
        );
    }
    match body.split_once('\n') {
        Some((open, rest)) => {
            match open.strip_suffix('>') {
                Some(open) if !look.theme.is_empty() => {
                    let _ = write!(
                        out,
                        r#"{open} data-theme="{}">"#,
                        encode_double_quoted_attribute(look.theme)
                    );
                }
                _ => out.push_str(open),
            }
            let _ = write!(
                out,
                "\n<title>{}</title>\n<style>a rect{{cursor:pointer}}a:hover rect,a:focus rect{{stroke:var(--gantt-ink,#1F2937);stroke-width:2}}</style>\n",
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

#[cfg(test)]
mod tests {
    use super::themed;

    #[test]
    fn each_palette_colour_becomes_its_property_and_anything_else_is_kept() {
        let painted = concat!(
            r##"<rect fill="#FFFFFF" stroke="#E2E5EA"/>"##,
            r##"<rect fill="#123456" stroke-width="1" stroke="#E2E5EA"/>"##,
            r##"<text refill="#FFFFFF" fill="#FFF">a="#b"</text><line stroke="#E2E5EA""##,
        );
        assert_eq!(
            themed(painted),
            concat!(
                r##"<rect style="fill:var(--gantt-background,#FFFFFF)" style="stroke:var(--gantt-grid,#E2E5EA)"/>"##,
                r##"<rect fill="#123456" stroke-width="1" style="stroke:var(--gantt-grid,#E2E5EA)"/>"##,
                r##"<text refill="#FFFFFF" fill="#FFF">a="#b"</text><line style="stroke:var(--gantt-grid,#E2E5EA)""##,
            )
        );
    }
}
