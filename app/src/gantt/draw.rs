//! Paints a [`Layout`] through plotters' backend API: into SVG on the server, onto a
//! canvas in the browser. Only the rows in view are painted, so a 10,000-step run costs
//! what its visible rows cost.

use super::layout::{Layout, Row, Tone, AXIS_HEIGHT, BAR_HEIGHT, CHAR_WIDTH, ROW_HEIGHT};
use crate::model::StepStatus;
use plotters_backend::text_anchor::{HPos, Pos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
    FontFamily, FontStyle,
};

/// The part of the chart to paint: chart pixels from `top`, `height` tall, at `scale`
/// device pixels per chart pixel (the screen's pixel ratio). The axis always shows at
/// the top, over whatever scrolled under it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Viewport {
    pub top: f64,
    pub height: f64,
    pub scale: f64,
}

impl Viewport {
    /// All of it, at one device pixel per pixel (the SVG).
    pub fn whole(layout: &Layout) -> Self {
        Self {
            top: 0.0,
            height: layout.height,
            scale: 1.0,
        }
    }
}

const fn rgb(r: u8, g: u8, b: u8) -> BackendColor {
    BackendColor {
        alpha: 1.0,
        rgb: (r, g, b),
    }
}

/// The chart's colours. The page's stylesheet holds them per theme, as the custom
/// properties named in [`Palette::SLOTS`]; [`Palette::LIGHT`] is what is used where no
/// stylesheet is (a downloaded SVG).
#[derive(Clone, Copy)]
pub struct Palette {
    pub background: BackendColor,
    pub stripe: BackendColor,
    pub grid: BackendColor,
    pub ink: BackendColor,
    pub muted: BackendColor,
    pub critical: BackendColor,
    pub sla: BackendColor,
    pub slow: BackendColor,
    pub succeeded: BackendColor,
    pub failed: BackendColor,
    pub running: BackendColor,
    pub compensation: BackendColor,
    pub cancelled: BackendColor,
}

/// Where a palette's colour is: read it, or set it.
type Slot = fn(&mut Palette) -> &mut BackendColor;

impl Palette {
    pub const LIGHT: Palette = Palette {
        background: rgb(255, 255, 255),
        stripe: rgb(246, 247, 249),
        grid: rgb(226, 229, 234),
        ink: rgb(31, 41, 55),
        muted: rgb(107, 114, 128),
        critical: rgb(91, 33, 182),
        sla: rgb(185, 28, 28),
        slow: rgb(180, 83, 9),
        succeeded: rgb(22, 163, 74),
        failed: rgb(220, 38, 38),
        running: rgb(37, 99, 235),
        compensation: rgb(234, 179, 8),
        cancelled: rgb(156, 163, 175),
    };

    /// Each colour's custom property in the stylesheet (`style/main.css`).
    pub const SLOTS: [(&'static str, Slot); 13] = [
        ("--gantt-background", |p| &mut p.background),
        ("--gantt-stripe", |p| &mut p.stripe),
        ("--gantt-grid", |p| &mut p.grid),
        ("--gantt-ink", |p| &mut p.ink),
        ("--gantt-muted", |p| &mut p.muted),
        ("--gantt-critical", |p| &mut p.critical),
        ("--gantt-sla", |p| &mut p.sla),
        ("--gantt-slow", |p| &mut p.slow),
        ("--gantt-succeeded", |p| &mut p.succeeded),
        ("--gantt-failed", |p| &mut p.failed),
        ("--gantt-running", |p| &mut p.running),
        ("--gantt-compensation", |p| &mut p.compensation),
        ("--gantt-cancelled", |p| &mut p.cancelled),
    ];

    /// The palette a stylesheet sets: `property` reads a custom property's computed
    /// value; a colour it does not give, or not as `#rrggbb` or `rgb(r, g, b)`, stays light.
    pub fn from_properties(property: impl Fn(&str) -> Option<String>) -> Palette {
        let mut palette = Palette::LIGHT;
        for (name, slot) in Palette::SLOTS {
            if let Some(color) = property(name).as_deref().and_then(parse_color) {
                *slot(&mut palette) = color;
            }
        }
        palette
    }

    /// The colour of a bar: green succeeded, red failed, blue running, yellow rollback.
    pub fn tone(&self, tone: Tone) -> BackendColor {
        match tone {
            Tone::Succeeded => self.succeeded,
            Tone::Failed => self.failed,
            Tone::Running => self.running,
            Tone::Compensation => self.compensation,
            Tone::Cancelled => self.cancelled,
        }
    }
}

impl PartialEq for Palette {
    fn eq(&self, other: &Self) -> bool {
        Palette::SLOTS.iter().all(|(_, slot)| {
            let (mut mine, mut theirs) = (*self, *other);
            let (a, b) = (slot(&mut mine), slot(&mut theirs));
            a.rgb == b.rgb && a.alpha == b.alpha
        })
    }
}

/// `#rrggbb` or `rgb(r, g, b)` / `rgb(r g b)`, as a stylesheet's computed value reads.
pub fn parse_color(text: &str) -> Option<BackendColor> {
    let text = text.trim();
    if let Some(hex) = text.strip_prefix('#') {
        if hex.len() != 6 {
            return None;
        }
        let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
        return Some(rgb(byte(0)?, byte(2)?, byte(4)?));
    }
    let inner = text.strip_prefix("rgb(")?.strip_suffix(')')?;
    let mut parts = inner
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u8>().ok());
    let color = rgb(parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(color)
}

/// A line of some width.
struct Stroke(BackendColor, u32);

impl BackendStyle for Stroke {
    fn color(&self) -> BackendColor {
        self.0
    }
    fn stroke_width(&self) -> u32 {
        self.1
    }
}

/// Text as the chart writes it. The SVG and canvas backends write text themselves (an
/// SVG `<text>`, the canvas' `fillText`); neither asks the style to lay out or rasterise
/// glyphs, so those two answer with an estimate and nothing.
struct Text {
    size: f64,
    color: BackendColor,
    anchor: Pos,
    bold: bool,
}

impl Text {
    fn new(size: f64, color: BackendColor, h: HPos, v: VPos) -> Self {
        Self {
            size,
            color,
            anchor: Pos::new(h, v),
            bold: false,
        }
    }
}

impl BackendTextStyle for Text {
    type FontError = std::convert::Infallible;

    fn color(&self) -> BackendColor {
        self.color
    }
    fn size(&self) -> f64 {
        self.size
    }
    fn anchor(&self) -> Pos {
        self.anchor
    }
    fn style(&self) -> FontStyle {
        if self.bold {
            FontStyle::Bold
        } else {
            FontStyle::Normal
        }
    }
    fn family(&self) -> FontFamily<'_> {
        FontFamily::SansSerif
    }
    fn layout_box(&self, text: &str) -> Result<((i32, i32), (i32, i32)), Self::FontError> {
        let width = (text.chars().count() as f64 * self.size * 0.55) as i32;
        Ok(((0, 0), (width, self.size as i32)))
    }
    fn draw<E, F: FnMut(i32, i32, BackendColor) -> Result<(), E>>(
        &self,
        _text: &str,
        _pos: BackendCoord,
        _draw: F,
    ) -> Result<Result<(), E>, Self::FontError> {
        Ok(Ok(()))
    }
}

/// `text` cut to `pixels` with an ellipsis.
pub fn fit(text: &str, pixels: f64) -> String {
    let room = (pixels / CHAR_WIDTH).floor().max(1.0) as usize;
    if text.chars().count() <= room {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(room.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// Paints `view` of `layout` on `backend`.
pub fn draw<B: DrawingBackend>(
    backend: &mut B,
    layout: &Layout,
    view: Viewport,
    palette: &Palette,
) -> Result<(), DrawingErrorKind<B::ErrorType>> {
    let painter = Painter {
        view,
        palette: *palette,
    };
    let colors = palette;
    let (width, height) = backend.get_size();
    backend.draw_rect(
        (0, 0),
        (width as i32, height as i32),
        &colors.background,
        true,
    )?;
    let bottom = view.top + view.height;
    let visible = layout.rows_between(view.top + AXIS_HEIGHT, bottom);
    let rows_bottom = layout.footer_top();

    for i in visible.clone() {
        let row = &layout.rows[i];
        if i % 2 == 1 {
            painter.rect(
                backend,
                (0.0, row.top),
                (layout.width, row.top + ROW_HEIGHT),
                colors.stripe,
                true,
            )?;
        }
    }
    // The grid under the bars, from the axis to the last row.
    let grid_bottom = rows_bottom.min(bottom);
    for tick in &layout.ticks {
        painter.line(
            backend,
            (tick.x, view.top + AXIS_HEIGHT),
            (tick.x, grid_bottom),
            Stroke(colors.grid, 1),
        )?;
    }
    if let Some(sla) = &layout.sla {
        if sla.breached && layout.end_x > sla.x {
            let shade = BackendColor {
                alpha: 0.08,
                rgb: colors.sla.rgb,
            };
            painter.rect(
                backend,
                (sla.x, view.top + AXIS_HEIGHT),
                (layout.end_x, grid_bottom),
                shade,
                true,
            )?;
        }
    }
    for i in visible {
        draw_row(backend, &painter, layout, &layout.rows[i])?;
    }
    if let Some(sla) = &layout.sla {
        painter.line(
            backend,
            (sla.x, view.top + AXIS_HEIGHT),
            (sla.x, grid_bottom),
            Stroke(colors.sla, 2),
        )?;
    }
    if rows_bottom < bottom {
        draw_footer(backend, &painter, layout, rows_bottom)?;
    }
    draw_axis(backend, &painter, layout)
}

/// Chart pixels to device pixels, in the palette's colours.
struct Painter {
    view: Viewport,
    palette: Palette,
}

impl Painter {
    fn at(&self, (x, y): (f64, f64)) -> BackendCoord {
        (
            (x * self.view.scale).round() as i32,
            ((y - self.view.top) * self.view.scale).round() as i32,
        )
    }

    fn rect<B: DrawingBackend>(
        &self,
        backend: &mut B,
        from: (f64, f64),
        to: (f64, f64),
        color: BackendColor,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        backend.draw_rect(self.at(from), self.at(to), &color, fill)
    }

    fn line<B: DrawingBackend>(
        &self,
        backend: &mut B,
        from: (f64, f64),
        to: (f64, f64),
        stroke: Stroke,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        let width = ((stroke.1 as f64) * self.view.scale).round().max(1.0) as u32;
        backend.draw_line(self.at(from), self.at(to), &Stroke(stroke.0, width))
    }

    fn text<B: DrawingBackend>(
        &self,
        backend: &mut B,
        text: &str,
        at: (f64, f64),
        mut style: Text,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        style.size *= self.view.scale;
        backend.draw_text(text, &style, self.at(at))
    }
}

fn draw_row<B: DrawingBackend>(
    backend: &mut B,
    painter: &Painter,
    layout: &Layout,
    row: &Row,
) -> Result<(), DrawingErrorKind<B::ErrorType>> {
    let middle = row.middle();
    let bar_top = middle - BAR_HEIGHT / 2.0;
    if row.critical {
        painter.rect(
            backend,
            (0.0, row.top + 2.0),
            (3.0, row.top + ROW_HEIGHT - 2.0),
            painter.palette.critical,
            true,
        )?;
    }
    // Steps still to come are greyed.
    let ink = if row.status == StepStatus::Pending {
        painter.palette.muted
    } else {
        painter.palette.ink
    };
    let mut label = Text::new(12.0, ink, HPos::Left, VPos::Center);
    label.bold = row.critical;
    painter.text(
        backend,
        &fit(&row.label, layout.plot_left - 14.0),
        (8.0, middle),
        label,
    )?;

    for wait in &row.waits {
        painter.line(
            backend,
            (wait.x0, middle),
            (wait.x1, middle),
            Stroke(painter.palette.muted, 1),
        )?;
        painter.line(
            backend,
            (wait.x1, middle - 3.0),
            (wait.x1, middle + 3.0),
            Stroke(painter.palette.muted, 1),
        )?;
        if wait.x1 - wait.x0 > 56.0 {
            let text = format!("wait {}", crate::model::format_duration(wait.seconds));
            painter.text(
                backend,
                &fit(&text, wait.x1 - wait.x0 - 4.0),
                ((wait.x0 + wait.x1) / 2.0, bar_top - 1.0),
                Text::new(10.0, painter.palette.muted, HPos::Center, VPos::Center),
            )?;
        }
    }
    for bar in &row.bars {
        // At least a sliver, so an instant step still shows.
        let x1 = bar.x1.max(bar.x0 + 2.0);
        painter.rect(
            backend,
            (bar.x0, bar_top),
            (x1, bar_top + BAR_HEIGHT),
            painter.palette.tone(bar.tone),
            true,
        )?;
        if row.critical {
            painter.rect(
                backend,
                (bar.x0, bar_top),
                (x1, bar_top + BAR_HEIGHT),
                painter.palette.critical,
                false,
            )?;
        }
    }
    if !row.note.is_empty() {
        let after = row.bars.iter().map(|b| b.x1.max(b.x0 + 2.0)).fold(
            row.waits
                .iter()
                .map(|w| w.x1)
                .fold(layout.plot_left, f64::max),
            f64::max,
        );
        let color = if row.slow.is_some() {
            painter.palette.slow
        } else {
            painter.palette.muted
        };
        painter.text(
            backend,
            &fit(
                &row.note,
                (layout.width - after - 10.0).max(CHAR_WIDTH * 4.0),
            ),
            (after + 6.0, middle),
            Text::new(11.0, color, HPos::Left, VPos::Center),
        )?;
    }
    Ok(())
}

fn draw_axis<B: DrawingBackend>(
    backend: &mut B,
    painter: &Painter,
    layout: &Layout,
) -> Result<(), DrawingErrorKind<B::ErrorType>> {
    let top = painter.view.top;
    painter.rect(
        backend,
        (0.0, top),
        (layout.width, top + AXIS_HEIGHT),
        painter.palette.background,
        true,
    )?;
    painter.line(
        backend,
        (0.0, top + AXIS_HEIGHT - 0.5),
        (layout.width, top + AXIS_HEIGHT - 0.5),
        Stroke(painter.palette.grid, 1),
    )?;
    painter.text(
        backend,
        &layout.axis_title,
        (8.0, top + AXIS_HEIGHT / 2.0),
        Text::new(11.0, painter.palette.muted, HPos::Left, VPos::Center),
    )?;
    for tick in &layout.ticks {
        painter.line(
            backend,
            (tick.x, top + AXIS_HEIGHT - 5.0),
            (tick.x, top + AXIS_HEIGHT),
            Stroke(painter.palette.muted, 1),
        )?;
        painter.text(
            backend,
            &tick.label,
            (tick.x, top + AXIS_HEIGHT / 2.0 - 2.0),
            Text::new(11.0, painter.palette.muted, HPos::Center, VPos::Center),
        )?;
    }
    if let Some(sla) = &layout.sla {
        let mut text = Text::new(11.0, painter.palette.sla, HPos::Left, VPos::Center);
        text.bold = true;
        let label = format!(
            "SLA {}",
            crate::model::format_duration(sla.target_seconds as f64)
        );
        painter.text(
            backend,
            &label,
            (sla.x + 4.0, top + AXIS_HEIGHT - 8.0),
            text,
        )?;
    }
    Ok(())
}

fn draw_footer<B: DrawingBackend>(
    backend: &mut B,
    painter: &Painter,
    layout: &Layout,
    top: f64,
) -> Result<(), DrawingErrorKind<B::ErrorType>> {
    let middle = top + 15.0;
    let breached = layout.sla.as_ref().is_some_and(|s| s.breached);
    let color = if breached {
        painter.palette.sla
    } else {
        painter.palette.ink
    };
    painter.text(
        backend,
        &layout.summary,
        (8.0, middle),
        Text::new(12.0, color, HPos::Left, VPos::Center),
    )?;
    // The legend, right-aligned.
    let legend: [(&str, BackendColor); 6] = [
        ("succeeded", painter.palette.tone(Tone::Succeeded)),
        ("failed", painter.palette.tone(Tone::Failed)),
        ("running", painter.palette.tone(Tone::Running)),
        ("rollback", painter.palette.tone(Tone::Compensation)),
        ("cancelled", painter.palette.tone(Tone::Cancelled)),
        ("critical path", painter.palette.critical),
    ];
    let mut x = layout.width
        - legend
            .iter()
            .map(|(name, _)| 18.0 + name.len() as f64 * CHAR_WIDTH)
            .sum::<f64>();
    if x < layout.width * 0.45 {
        return Ok(());
    }
    for (name, color) in legend {
        painter.rect(
            backend,
            (x, middle - 5.0),
            (x + 10.0, middle + 5.0),
            color,
            true,
        )?;
        painter.text(
            backend,
            name,
            (x + 13.0, middle),
            Text::new(11.0, painter.palette.muted, HPos::Left, VPos::Center),
        )?;
        x += 18.0 + name.len() as f64 * CHAR_WIDTH;
    }
    Ok(())
}
