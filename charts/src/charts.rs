//! Line charts, grouped bar charts and side-by-side scatter plots, each drawn
//! onto a new [`Canvas`] that the caller saves.
//!
//! Every chart follows the same recipe: choose the data range, round it out
//! to "nice" tick values ([`nice_ticks`]), work out the margins from the text
//! that has to fit in them, then draw from the back to the front: grid
//! lines, data, axes, labels, legend.

use crate::Canvas;
use crate::PALETTE;

/// One line of a [`line_chart`]: (x, y) points joined in the given order.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Name shown in the legend (there is a legend when there are two or
    /// more series).
    pub name: String,
    /// The points; non-finite ones are skipped and break the line.
    pub points: Vec<(f32, f32)>,
    /// Colour of the line.
    pub color: [u8; 3],
}

/// One bar in every group of a [`bar_chart`], for example "kNN accuracy".
#[derive(Clone, Debug, PartialEq)]
pub struct BarSeries {
    /// Name shown in the legend.
    pub name: String,
    /// One value per group, in the order of the groups. A missing or
    /// non-finite value draws no bar but the text "n/a".
    pub values: Vec<f32>,
    /// Colour of the bars.
    pub color: [u8; 3],
}

/// One panel of [`scatter_panels`]: 2-D points coloured by class.
#[derive(Clone, Debug, PartialEq)]
pub struct ScatterPanel {
    /// Heading above the panel.
    pub title: String,
    /// The points; non-finite ones are skipped.
    pub points: Vec<[f32; 2]>,
    /// Class of each point, an index into the class names and
    /// (modulo 10) into [`PALETTE`]. Points without a label are grey.
    pub labels: Vec<u32>,
}

/// Colour of titles, labels and numbers.
const INK: [u8; 3] = [30, 30, 30];
/// Colour of the axes box.
const AXIS: [u8; 3] = [70, 70, 70];
/// Colour of the grid lines behind the data.
const GRID: [u8; 3] = [228, 228, 228];
/// Colour of points whose class is unknown.
const UNLABELLED: [u8; 3] = [160, 160, 160];

/// Text scale (font pixel to screen pixels) of titles and labels: the 5 x 7
/// font becomes 10 x 14 pixels.
const TEXT: i32 = 2;
/// Line thickness of data lines.
const LINE: i32 = 2;
/// Series with at most this many points also get a dot at every point.
const MARKERS_UP_TO: usize = 40;
/// How many ticks an axis aims for.
const TICKS: usize = 5;
/// Space kept clear around the edge of the picture.
const PAD: i32 = 14;

/// Size of a line chart or bar chart.
const CHART_SIZE: (usize, usize) = (800, 500);
/// Height of a scatter figure, and width of each of its panels.
const SCATTER_HEIGHT: usize = 500;
const SCATTER_PANEL_WIDTH: i32 = 400;

/// Tick values for an axis that must show `lo..=hi`, about `target` of
/// them, spaced by a "nice" step: 1, 2 or 5 times a power of ten. The first
/// tick is at or below `lo` and the last at or above `hi`, so the axis runs
/// from the first tick to the last.
///
/// A zero-width range is widened first (by 10% of its value each side, or
/// to 0..1 around zero) and a non-finite one becomes 0..1, so there are
/// always at least two distinct, increasing ticks.
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    let (mut lo, mut hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
    if !(lo.is_finite() && hi.is_finite() && (hi - lo).is_finite()) {
        (lo, hi) = (0.0, 1.0);
    }
    let size = lo.abs().max(hi.abs());
    if hi - lo <= 1e-9 * size || size == 0.0 {
        // (Nearly) a single value: make room around it.
        if size == 0.0 {
            (lo, hi) = (0.0, 1.0);
        } else {
            (lo, hi) = (lo - 0.1 * size, hi + 0.1 * size);
        }
    }
    let intervals = target.max(2) - 1;
    let (mantissa, exponent) = nice_step((hi - lo) / intervals as f64);
    let step = decimal(mantissa, exponent);
    // Tick k sits at k * step. The tiny nudges keep rounding noise in
    // lo / step (say 15.999999999999998 for 16) from adding a tick.
    let first = (lo / step + 1e-9).floor() as i64;
    let mut last = (hi / step - 1e-9).ceil() as i64;
    if last <= first {
        last = first + 1;
    }
    (first..=last)
        .map(|k| {
            let v = decimal(k as f64 * mantissa, exponent);
            // Avoid printing "-0".
            if v == 0.0 {
                0.0
            } else {
                v
            }
        })
        .collect()
}

/// The "nice" number closest to `raw` (which must be positive), as
/// `(mantissa, exponent)` meaning `mantissa * 10^exponent`, with a mantissa
/// of 1, 2 or 5.
fn nice_step(raw: f64) -> (f64, i32) {
    let mut exponent = raw.log10().floor() as i32;
    let fraction = raw / decimal(1.0, exponent);
    let mantissa = if fraction < 1.5 {
        1.0
    } else if fraction < 3.0 {
        2.0
    } else if fraction < 7.0 {
        5.0
    } else {
        exponent += 1;
        1.0
    };
    (mantissa, exponent)
}

/// `mantissa * 10^exponent`, computed so that whole-number mantissas give
/// the double nearest the decimal value: 3 with exponent -5 is exactly the
/// number written `3e-5`, where `3.0 * 1e-5` would be slightly off.
fn decimal(mantissa: f64, exponent: i32) -> f64 {
    if exponent >= 0 {
        mantissa * 10f64.powi(exponent)
    } else {
        mantissa / 10f64.powi(-exponent)
    }
}

/// A tick value as text with just enough decimals for ticks `step` apart:
/// step 0.2 gives "0.4", step 0.05 gives "0.15", step 50 gives "150".
fn tick_label(value: f64, step: f64) -> String {
    let decimals = (-step.log10() - 1e-9).ceil().clamp(0.0, 12.0) as usize;
    let value = if value.abs() < step * 1e-6 {
        0.0
    } else {
        value
    };
    format!("{value:.decimals$}")
}

/// A bar's value as text: three decimals for values below 10 (typically
/// accuracies), fewer for bigger ones.
fn value_label(value: f64) -> String {
    if value.abs() < 10.0 {
        format!("{value:.3}")
    } else if value.abs() < 1000.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

/// The smallest and largest of the finite `values`, or `None` if there are
/// none.
fn finite_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let mut range: Option<(f64, f64)> = None;
    for v in values.filter(|v| v.is_finite()) {
        range = Some(match range {
            None => (v, v),
            Some((lo, hi)) => (lo.min(v), hi.max(v)),
        });
    }
    range
}

/// The plot area of a chart: the rectangle inside the axes, in pixels,
/// edges included.
#[derive(Clone, Copy, Debug)]
struct Frame {
    left: i32,
    top: i32,
    right: i32,
    bottom: i32,
}

/// Maps data values on one axis to pixel positions: `lo` goes to `px_lo`
/// and `hi` to `px_hi` (for a y axis `px_lo` is the bottom, which has the
/// larger pixel row).
#[derive(Clone, Copy, Debug)]
struct Mapping {
    lo: f64,
    hi: f64,
    px_lo: i32,
    px_hi: i32,
}

impl Mapping {
    /// An axis spanning the given ticks (first to last) over the pixels.
    fn new(ticks: &[f64], px_lo: i32, px_hi: i32) -> Mapping {
        Mapping {
            lo: ticks[0],
            hi: ticks[ticks.len() - 1],
            px_lo,
            px_hi,
        }
    }

    /// The pixel position of `value`.
    fn px(&self, value: f64) -> i32 {
        let fraction = (value - self.lo) / (self.hi - self.lo);
        let px = self.px_lo as f64 + fraction * (self.px_hi - self.px_lo) as f64;
        px.round() as i32
    }
}

/// The widest of the texts at `scale`, in pixels.
fn widest(texts: &[String], scale: i32) -> i32 {
    texts
        .iter()
        .map(|t| Canvas::text_width(t, scale))
        .max()
        .unwrap_or(0)
}

/// Writes `text` centred on column `center_x`, top at `y`.
fn text_centred(canvas: &mut Canvas, center_x: i32, y: i32, text: &str, scale: i32) {
    let x = center_x - Canvas::text_width(text, scale) / 2;
    canvas.text(x, y, text, INK, scale);
}

/// Writes the chart title centred at the top, shrinking it if it is too
/// wide for the picture, and returns the first free row below it.
fn draw_title(canvas: &mut Canvas, title: &str) -> i32 {
    let width = canvas.width as i32;
    let scale = if Canvas::text_width(title, TEXT) <= width - 2 * PAD {
        TEXT
    } else {
        1
    };
    text_centred(canvas, width / 2, PAD, title, scale);
    PAD + Canvas::text_height(scale)
}

/// Splits `text` into lines no wider than `max_width` pixels at `scale`,
/// breaking between words where possible and inside a word that is too
/// long on its own. Always returns at least one line.
fn wrap_words(text: &str, max_width: i32, scale: i32) -> Vec<String> {
    let fits = |s: &str| Canvas::text_width(s, scale) <= max_width;
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let joined = if line.is_empty() {
            word.to_string()
        } else {
            format!("{line} {word}")
        };
        if fits(&joined) {
            line = joined;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        // The word starts a new line; cut it while it is too wide.
        for c in word.chars() {
            line.push(c);
            if !fits(&line) && line.chars().count() > 1 {
                line.pop();
                lines.push(std::mem::take(&mut line));
                line.push(c);
            }
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// How a legend entry shows its colour.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Swatch {
    /// A short thick line, for line charts.
    Line,
    /// A filled square, for bar charts.
    Block,
    /// A filled disc, for scatter plots.
    Dot,
}

/// Width of the colour sample in front of a legend name.
const SWATCH_WIDTH: i32 = 22;
/// Gap between the sample and the name.
const SWATCH_GAP: i32 = 6;
/// Horizontal gap between legend entries on one row.
const ENTRY_GAP: i32 = 24;
/// Height of a legend row.
const LEGEND_ROW: i32 = 22;

/// Width of one legend entry: sample, gap, name.
fn entry_width(name: &str) -> i32 {
    SWATCH_WIDTH + SWATCH_GAP + Canvas::text_width(name, TEXT)
}

/// Draws one legend entry with its top-left corner at (x, y).
fn draw_entry(canvas: &mut Canvas, x: i32, y: i32, name: &str, color: [u8; 3], swatch: Swatch) {
    let h = Canvas::text_height(TEXT);
    let middle = y + h / 2;
    match swatch {
        Swatch::Line => canvas.line(x, middle, x + SWATCH_WIDTH - 1, middle, color, 3),
        Swatch::Block => canvas.fill_rect(x + 4, y, SWATCH_WIDTH - 8, h, color),
        Swatch::Dot => canvas.circle(x + SWATCH_WIDTH / 2, middle, 5, color),
    }
    canvas.text(x + SWATCH_WIDTH + SWATCH_GAP, y, name, INK, TEXT);
}

/// Draws a legend as centred rows across the picture, starting at row `y`,
/// moving to a new row when an entry does not fit. Returns the first free
/// row below it.
fn legend_rows(canvas: &mut Canvas, y: i32, entries: &[(&str, [u8; 3])], swatch: Swatch) -> i32 {
    let max_width = canvas.width as i32 - 2 * PAD;
    // First group the entries into rows, then draw each row centred.
    let mut rows: Vec<Vec<usize>> = Vec::new();
    let mut row_width = 0;
    for (i, (name, _)) in entries.iter().enumerate() {
        let w = entry_width(name);
        match rows.last_mut() {
            Some(row) if row_width + ENTRY_GAP + w <= max_width => {
                row.push(i);
                row_width += ENTRY_GAP + w;
            }
            _ => {
                rows.push(vec![i]);
                row_width = w;
            }
        }
    }
    let mut top = y;
    for row in &rows {
        let total: i32 = row.iter().map(|&i| entry_width(entries[i].0)).sum::<i32>()
            + ENTRY_GAP * (row.len() as i32 - 1);
        let mut x = (canvas.width as i32 - total) / 2;
        for &i in row {
            let (name, color) = entries[i];
            draw_entry(canvas, x, top, name, color, swatch);
            x += entry_width(name) + ENTRY_GAP;
        }
        top += LEGEND_ROW;
    }
    top
}

/// Draws a horizontal grid line, tick mark and label for every y tick.
fn y_ticks(canvas: &mut Canvas, frame: Frame, y: Mapping, ticks: &[f64]) {
    let step = ticks[1] - ticks[0];
    let h = Canvas::text_height(TEXT);
    for &t in ticks {
        let py = y.px(t);
        canvas.line(frame.left, py, frame.right, py, GRID, 1);
        canvas.line(frame.left - 5, py, frame.left, py, AXIS, 1);
        let label = tick_label(t, step);
        let x = frame.left - 9 - Canvas::text_width(&label, TEXT);
        canvas.text(x, py - h / 2, &label, INK, TEXT);
    }
}

/// Draws a vertical grid line and tick mark for every x tick, and labels
/// under them, leaving some labels out when they would overlap.
fn x_ticks(canvas: &mut Canvas, frame: Frame, x: Mapping, ticks: &[f64]) {
    let step = ticks[1] - ticks[0];
    let labels: Vec<String> = ticks.iter().map(|&t| tick_label(t, step)).collect();
    let spacing = (x.px(ticks[1]) - x.px(ticks[0])).max(1);
    // Label every `every`-th tick so that labels keep 12 pixels apart.
    let every = ((widest(&labels, TEXT) + 12) as f64 / spacing as f64).ceil() as usize;
    for (i, (&t, label)) in ticks.iter().zip(&labels).enumerate() {
        let px = x.px(t);
        canvas.line(px, frame.top, px, frame.bottom, GRID, 1);
        canvas.line(px, frame.bottom, px, frame.bottom + 5, AXIS, 1);
        if i % every.max(1) == 0 {
            text_centred(canvas, px, frame.bottom + 9, label, TEXT);
        }
    }
}

/// Draws the box around the plot area.
fn draw_frame(canvas: &mut Canvas, f: Frame) {
    canvas.line(f.left, f.top, f.right, f.top, AXIS, 1);
    canvas.line(f.left, f.bottom, f.right, f.bottom, AXIS, 1);
    canvas.line(f.left, f.top, f.left, f.bottom, AXIS, 1);
    canvas.line(f.right, f.top, f.right, f.bottom, AXIS, 1);
}

/// Writes the y-axis label turned on its side, centred along the frame.
fn draw_y_label(canvas: &mut Canvas, frame: Frame, label: &str) {
    let length = Canvas::text_width(label, TEXT);
    let y = (frame.top + frame.bottom) / 2 - length / 2;
    canvas.text_vertical(PAD, y.max(0), label, INK, TEXT);
}

/// A line chart of one or more series on shared axes, 800 x 500 pixels.
///
/// The axes cover all finite points, rounded out to nice ticks; a single
/// point or a constant series gets a widened range instead of a division
/// by zero. With no (finite) points the chart has just the title and 0..1
/// axes. With two or more series a legend sits under the title. Series
/// with few points also get a dot at each point.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> Canvas {
    let (width, height) = CHART_SIZE;
    let mut canvas = Canvas::new(width, height);
    let mut top = draw_title(&mut canvas, title) + 12;
    if series.len() > 1 {
        let entries: Vec<(&str, [u8; 3])> =
            series.iter().map(|s| (s.name.as_str(), s.color)).collect();
        top = legend_rows(&mut canvas, top, &entries, Swatch::Line) + 6;
    }
    top += 8;

    // Data ranges over the finite points of every series.
    let finite = || {
        series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let (x_lo, x_hi) = finite_range(finite().map(|p| p.0 as f64)).unwrap_or((0.0, 1.0));
    let (y_lo, y_hi) = finite_range(finite().map(|p| p.1 as f64)).unwrap_or((0.0, 1.0));
    let xt = nice_ticks(x_lo, x_hi, TICKS);
    let yt = nice_ticks(y_lo, y_hi, TICKS);

    // Margins: the y label and y tick labels on the left, x tick labels and
    // the x label below, half of the last x tick label on the right.
    let text_h = Canvas::text_height(TEXT);
    let y_tick_labels: Vec<String> = yt.iter().map(|&t| tick_label(t, yt[1] - yt[0])).collect();
    let last_x_label = tick_label(xt[xt.len() - 1], xt[1] - xt[0]);
    let frame = Frame {
        left: PAD + text_h + 12 + widest(&y_tick_labels, TEXT) + 9,
        top,
        right: width as i32 - PAD - (Canvas::text_width(&last_x_label, TEXT) / 2).max(10),
        bottom: height as i32 - PAD - text_h - 12 - text_h - 9,
    };
    let x = Mapping::new(&xt, frame.left, frame.right);
    let y = Mapping::new(&yt, frame.bottom, frame.top);

    y_ticks(&mut canvas, frame, y, &yt);
    x_ticks(&mut canvas, frame, x, &xt);
    for s in series {
        draw_series(&mut canvas, s, x, y);
    }
    draw_frame(&mut canvas, frame);
    text_centred(
        &mut canvas,
        (frame.left + frame.right) / 2,
        height as i32 - PAD - text_h,
        x_label,
        TEXT,
    );
    draw_y_label(&mut canvas, frame, y_label);
    canvas
}

/// Draws one series: lines between consecutive finite points, a dot for a
/// point with no finite neighbour, and dots at every point of short series.
fn draw_series(canvas: &mut Canvas, s: &Series, x: Mapping, y: Mapping) {
    // Split into runs of finite points; a non-finite point ends a run.
    let mut runs: Vec<Vec<(i32, i32)>> = vec![Vec::new()];
    for &(px, py) in &s.points {
        if px.is_finite() && py.is_finite() {
            let point = (x.px(px as f64), y.px(py as f64));
            runs.last_mut().unwrap().push(point);
        } else if !runs.last().unwrap().is_empty() {
            runs.push(Vec::new());
        }
    }
    let count: usize = runs.iter().map(Vec::len).sum();
    for run in &runs {
        for pair in run.windows(2) {
            let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
            canvas.line(x0, y0, x1, y1, s.color, LINE);
        }
        if run.len() == 1 || count <= MARKERS_UP_TO {
            for &(px, py) in run {
                canvas.circle(px, py, 3, s.color);
            }
        }
    }
}

/// A grouped bar chart, 800 x 500 pixels: for every group (for example a
/// row of an experiment) one bar per series (for example kNN and linear
/// accuracy), side by side, with the value written above each bar.
///
/// The y axis starts at 0 (or below, for negative values) and rounds the
/// largest value up to a nice tick. Group names are written under their
/// bars, wrapped onto several lines or shrunk when they are long. A legend
/// of the series sits under the title.
pub fn bar_chart(title: &str, y_label: &str, groups: &[String], bars: &[BarSeries]) -> Canvas {
    let (width, height) = CHART_SIZE;
    let mut canvas = Canvas::new(width, height);
    let mut top = draw_title(&mut canvas, title) + 12;
    if !bars.is_empty() {
        let entries: Vec<(&str, [u8; 3])> =
            bars.iter().map(|b| (b.name.as_str(), b.color)).collect();
        top = legend_rows(&mut canvas, top, &entries, Swatch::Block) + 6;
    }
    // Room above the tallest bar for its value.
    top += 8 + Canvas::text_height(TEXT);

    // The value of series `s` in group `g`, if there is a finite one.
    let value = |s: &BarSeries, g: usize| -> Option<f64> {
        s.values.get(g).map(|&v| v as f64).filter(|v| v.is_finite())
    };
    let all_values = bars
        .iter()
        .flat_map(|s| (0..groups.len()).filter_map(move |g| value(s, g)));
    let (lo, hi) = finite_range(all_values).unwrap_or((0.0, 1.0));
    let yt = nice_ticks(lo.min(0.0), hi.max(0.0), TICKS);
    let y_tick_labels: Vec<String> = yt.iter().map(|&t| tick_label(t, yt[1] - yt[0])).collect();

    let text_h = Canvas::text_height(TEXT);
    let left = PAD + text_h + 12 + widest(&y_tick_labels, TEXT) + 9;
    let right = width as i32 - PAD - 6;
    let group_width = (right - left) as f64 / groups.len().max(1) as f64;

    // Group names: wrap at the normal size onto at most three lines, or
    // else at half size.
    let max_label_width = (group_width as i32 - 8).max(1);
    let mut label_scale = TEXT;
    let mut wrapped: Vec<Vec<String>> = groups
        .iter()
        .map(|g| wrap_words(g, max_label_width, TEXT))
        .collect();
    if wrapped.iter().any(|lines| lines.len() > 3) {
        label_scale = 1;
        wrapped = groups
            .iter()
            .map(|g| wrap_words(g, max_label_width, 1))
            .collect();
    }
    // Room for the tails of g, p, q and y between lines.
    let line_h = Canvas::text_height(label_scale) * 9 / 7 + 3;
    let label_lines = wrapped.iter().map(Vec::len).max().unwrap_or(1) as i32;

    let frame = Frame {
        left,
        top,
        right,
        bottom: height as i32 - PAD - label_lines * line_h - 6,
    };
    let y = Mapping::new(&yt, frame.bottom, frame.top);
    y_ticks(&mut canvas, frame, y, &yt);

    // Bars take 80% of each group's width, split evenly between series.
    let zero = y.px(0.0);
    let bar_width = group_width * 0.8 / bars.len().max(1) as f64;
    for (g, lines) in wrapped.iter().enumerate() {
        let group_left = left as f64 + g as f64 * group_width;
        for (s, series) in bars.iter().enumerate() {
            let x0 = (group_left + group_width * 0.1 + s as f64 * bar_width).round() as i32;
            let x1 = (group_left + group_width * 0.1 + (s + 1) as f64 * bar_width).round() as i32;
            // Leave a 2-pixel gap between neighbouring bars when there is room.
            let gap = if x1 - x0 > 6 { 2 } else { 0 };
            let center = (x0 + x1) / 2;
            let Some(v) = value(series, g) else {
                text_centred(&mut canvas, center, zero - text_h - 3, "n/a", 1);
                continue;
            };
            let py = y.px(v);
            let (bar_top, bar_bottom) = (py.min(zero), py.max(zero));
            canvas.fill_rect(
                x0 + gap / 2,
                bar_top,
                x1 - x0 - gap,
                bar_bottom - bar_top + 1,
                series.color,
            );
            let label = value_label(v);
            let scale = if Canvas::text_width(&label, TEXT) <= x1 - x0 + 4 {
                TEXT
            } else {
                1
            };
            let label_y = if v >= 0.0 {
                bar_top - Canvas::text_height(scale) - 4
            } else {
                bar_bottom + 4
            };
            text_centred(&mut canvas, center, label_y, &label, scale);
        }
        let center = (group_left + group_width / 2.0).round() as i32;
        for (i, line) in lines.iter().enumerate() {
            let line_y = frame.bottom + 8 + i as i32 * line_h;
            text_centred(&mut canvas, center, line_y, line, label_scale);
        }
    }
    draw_frame(&mut canvas, frame);
    canvas.line(frame.left, zero, frame.right, zero, AXIS, 1);
    draw_y_label(&mut canvas, frame, y_label);
    canvas
}

/// Side-by-side scatter plots sharing one legend, 500 pixels high and about
/// 400 pixels wide per panel plus the legend (1000 x 500 for two panels).
///
/// Each panel is scaled to its own points. A point of class `k` is drawn
/// as a small disc in `PALETTE[k % 10]`; the legend on the right lists
/// `class_names` with their colours. Smaller discs are used when there are
/// many points.
pub fn scatter_panels(title: &str, panels: &[ScatterPanel], class_names: &[&str]) -> Canvas {
    let text_h = Canvas::text_height(TEXT);
    let names: Vec<String> = class_names.iter().map(|s| s.to_string()).collect();
    let legend_width = if names.is_empty() {
        0
    } else {
        SWATCH_WIDTH + SWATCH_GAP + widest(&names, TEXT) + PAD
    };
    let panel_count = panels.len().max(1) as i32;
    let width = (panel_count * SCATTER_PANEL_WIDTH + legend_width + 2 * PAD).max(1000);
    let mut canvas = Canvas::new(width as usize, SCATTER_HEIGHT);
    let top = draw_title(&mut canvas, title) + 20;

    // The panels share the width left of the legend equally.
    let slot_width = (width - legend_width - 2 * PAD) / panel_count;
    let plot_top = top + text_h + 10;
    let plot_bottom = SCATTER_HEIGHT as i32 - PAD - text_h - 12;
    for (i, panel) in panels.iter().enumerate() {
        let slot_left = PAD + i as i32 * slot_width;
        draw_panel(
            &mut canvas,
            panel,
            slot_left,
            slot_width,
            top,
            plot_top,
            plot_bottom,
        );
    }

    // The shared legend: one class per row, on the right.
    let legend_left = width - PAD - legend_width + 8;
    for (k, name) in class_names.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        draw_entry(
            &mut canvas,
            legend_left,
            plot_top + k as i32 * LEGEND_ROW,
            name,
            color,
            Swatch::Dot,
        );
    }
    canvas
}

/// Draws one scatter panel into the horizontal slot starting at
/// `slot_left`: its title at row `title_y`, its plot between rows
/// `plot_top` and `plot_bottom`.
fn draw_panel(
    canvas: &mut Canvas,
    panel: &ScatterPanel,
    slot_left: i32,
    slot_width: i32,
    title_y: i32,
    plot_top: i32,
    plot_bottom: i32,
) {
    let finite: Vec<(usize, [f32; 2])> = panel
        .points
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, p)| p[0].is_finite() && p[1].is_finite())
        .collect();
    let (x_lo, x_hi) = finite_range(finite.iter().map(|(_, p)| p[0] as f64)).unwrap_or((0.0, 1.0));
    let (y_lo, y_hi) = finite_range(finite.iter().map(|(_, p)| p[1] as f64)).unwrap_or((0.0, 1.0));
    let xt = nice_ticks(x_lo, x_hi, TICKS);
    let yt = nice_ticks(y_lo, y_hi, TICKS);
    let y_tick_labels: Vec<String> = yt.iter().map(|&t| tick_label(t, yt[1] - yt[0])).collect();
    let last_x_label = tick_label(xt[xt.len() - 1], xt[1] - xt[0]);

    let frame = Frame {
        left: slot_left + widest(&y_tick_labels, TEXT) + 9,
        top: plot_top,
        right: slot_left + slot_width - (Canvas::text_width(&last_x_label, TEXT) / 2).max(12) - 6,
        bottom: plot_bottom,
    };
    let x = Mapping::new(&xt, frame.left, frame.right);
    let y = Mapping::new(&yt, frame.bottom, frame.top);
    y_ticks(canvas, frame, y, &yt);
    x_ticks(canvas, frame, x, &xt);

    let radius = match finite.len() {
        0..=500 => 3,
        501..=3000 => 2,
        _ => 1,
    };
    for (i, p) in &finite {
        let color = match panel.labels.get(*i) {
            Some(&k) => PALETTE[k as usize % PALETTE.len()],
            None => UNLABELLED,
        };
        canvas.circle(x.px(p[0] as f64), y.px(p[1] as f64), radius, color);
    }
    draw_frame(canvas, frame);

    let center = (frame.left + frame.right) / 2;
    let scale = if Canvas::text_width(&panel.title, TEXT) <= slot_width - 10 {
        TEXT
    } else {
        1
    };
    text_centred(canvas, center, title_y, &panel.title, scale);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether any pixel of the canvas has exactly this colour.
    fn has_color(c: &Canvas, color: [u8; 3]) -> bool {
        c.pixels.contains(&color)
    }

    /// The step between ticks, checked to be 1, 2 or 5 times a power of ten.
    fn assert_nice(ticks: &[f64]) -> f64 {
        let step = ticks[1] - ticks[0];
        let power = 10f64.powf(step.log10().floor());
        let fraction = step / power;
        assert!(
            [1.0, 2.0, 5.0, 10.0]
                .iter()
                .any(|n| (fraction - n).abs() < 1e-6),
            "step {step} of {ticks:?}"
        );
        for pair in ticks.windows(2) {
            assert!(
                ((pair[1] - pair[0]) - step).abs() < step * 1e-6,
                "{ticks:?}"
            );
        }
        step
    }

    /// Checks the ticks of (lo, hi) cover it with a nice, even step.
    fn check_ticks(lo: f64, hi: f64) -> Vec<f64> {
        let ticks = nice_ticks(lo, hi, 5);
        assert!((3..=8).contains(&ticks.len()), "{lo}..{hi}: {ticks:?}");
        assert_nice(&ticks);
        assert!(
            ticks[0] <= lo && *ticks.last().unwrap() >= hi,
            "{lo}..{hi}: {ticks:?}"
        );
        ticks
    }

    #[test]
    fn nice_ticks_of_typical_ranges() {
        let t = check_ticks(0.0, 0.73);
        assert_eq!(t.len(), 5);
        assert!(
            (t[1] - 0.2).abs() < 1e-12 && (t[4] - 0.8).abs() < 1e-12,
            "{t:?}"
        );

        let t = check_ticks(3.2, 3.9);
        assert!(
            (t[0] - 3.2).abs() < 1e-9 && (t[t.len() - 1] - 4.0).abs() < 1e-9,
            "{t:?}"
        );

        let t = check_ticks(-1.0, 250.0);
        assert_eq!(t, vec![-50.0, 0.0, 50.0, 100.0, 150.0, 200.0, 250.0]);

        check_ticks(0.0, 1.0);
        check_ticks(1e-5, 3e-5);
        check_ticks(-7.5, -2.25);
        check_ticks(0.0, 98_765.0);
    }

    #[test]
    fn nice_ticks_of_empty_and_odd_ranges() {
        assert_eq!(nice_ticks(0.0, 0.0, 5), vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        // A single non-zero value gets room around it.
        let t = nice_ticks(3.5, 3.5, 5);
        assert_nice(&t);
        assert!(t[0] < 3.5 && *t.last().unwrap() > 3.5, "{t:?}");
        // Swapped and non-finite ranges still give increasing ticks.
        assert_eq!(nice_ticks(1.0, 0.0, 5), nice_ticks(0.0, 1.0, 5));
        let t = nice_ticks(f64::NAN, f64::INFINITY, 5);
        assert!(t.len() >= 2 && t.windows(2).all(|w| w[0] < w[1]), "{t:?}");
        // No negative zero.
        assert!(nice_ticks(-1.0, 1.0, 5)
            .iter()
            .all(|v| !(v == &0.0 && v.is_sign_negative())));
    }

    #[test]
    fn tick_labels_have_just_enough_decimals() {
        assert_eq!(tick_label(0.4, 0.2), "0.4");
        assert_eq!(tick_label(0.6000000000000001, 0.2), "0.6");
        assert_eq!(tick_label(0.15, 0.05), "0.15");
        assert_eq!(tick_label(0.3, 0.1), "0.3");
        assert_eq!(tick_label(150.0, 50.0), "150");
        assert_eq!(tick_label(-1e-17, 0.1), "0.0");
        assert_eq!(value_label(0.8734), "0.873");
        assert_eq!(value_label(52.25), "52.2");
    }

    #[test]
    fn wrapping_breaks_between_words_and_inside_long_words() {
        let lines = wrap_words("BYOL-pretrained ResNet-18 encoder", 200, 2);
        assert!(
            lines.iter().all(|l| Canvas::text_width(l, 2) <= 200),
            "{lines:?}"
        );
        assert_eq!(lines.join(" "), "BYOL-pretrained ResNet-18 encoder");
        let lines = wrap_words("abcdefghijkl", 5 * 6 - 1, 1);
        assert_eq!(lines, vec!["abcde", "fghij", "kl"]);
        assert_eq!(wrap_words("", 100, 1), vec![""]);
    }

    fn series(points: Vec<(f32, f32)>, color: [u8; 3]) -> Series {
        Series {
            name: "s".into(),
            points,
            color,
        }
    }

    #[test]
    fn line_chart_draws_each_series_in_its_colour() {
        let red = [200, 10, 10];
        let blue = [10, 10, 200];
        let c = line_chart(
            "t",
            "x",
            "y",
            &[
                series(vec![(0.0, 1.0), (1.0, 0.5), (2.0, 0.2)], red),
                series(vec![(0.0, 0.1), (2.0, 0.9)], blue),
            ],
        );
        assert_eq!((c.width, c.height), CHART_SIZE);
        assert!(has_color(&c, red) && has_color(&c, blue));
    }

    #[test]
    fn line_chart_survives_constant_single_and_missing_points() {
        let color = [12, 34, 56];
        let cases = vec![
            vec![(1.0, 2.0)],
            vec![(0.0, 0.5), (1.0, 0.5), (2.0, 0.5)],
            vec![(3.0, 0.0), (3.0, 1.0)],
            vec![(0.0, 0.0), (0.0, 0.0)],
            vec![
                (f32::NAN, 1.0),
                (1.0, f32::INFINITY),
                (2.0, 3.0),
                (3.0, f32::NAN),
            ],
            vec![(-1e30, 1e-30), (1e30, -1e-30)],
        ];
        for points in cases {
            let c = line_chart("t", "x", "y", &[series(points.clone(), color)]);
            assert!(has_color(&c, color), "{points:?}");
        }
    }

    #[test]
    fn line_chart_without_data_has_title_and_axes() {
        let c = line_chart("Nothing", "x", "y", &[]);
        assert!(has_color(&c, INK) && has_color(&c, AXIS));
        let c = line_chart(
            "Nothing",
            "x",
            "y",
            &[series(vec![(f32::NAN, 0.0)], [1, 2, 3])],
        );
        assert!(!has_color(&c, [1, 2, 3]));
    }

    #[test]
    fn a_point_lands_where_the_axes_say() {
        // One point at the middle of both ranges: the data range 0..1 maps
        // to the ticks 0..1, so the dot is in the middle of the frame.
        let color = [1, 200, 3];
        let c = line_chart(
            "",
            "",
            "",
            &[series(vec![(0.0, 0.0), (0.5, 0.5), (1.0, 1.0)], color)],
        );
        // Find the frame from its corners: the leftmost and lowest pixels of
        // the series are at (0, 0), the rightmost and highest at (1, 1).
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for (i, p) in c.pixels.iter().enumerate() {
            if *p == color {
                xs.push((i % c.width) as i32);
                ys.push((i / c.width) as i32);
            }
        }
        let (x_min, x_max) = (*xs.iter().min().unwrap(), *xs.iter().max().unwrap());
        let (y_min, y_max) = (*ys.iter().min().unwrap(), *ys.iter().max().unwrap());
        let (mid_x, mid_y) = ((x_min + x_max) / 2, (y_min + y_max) / 2);
        assert_eq!(c.pixels[mid_y as usize * c.width + mid_x as usize], color);
        // The line rises to the right: the top-right corner is coloured,
        // the top-left is not.
        // (Just inside the corner, so the frame line does not cover it.)
        assert_eq!(
            c.pixels[(y_min + 4) as usize * c.width + (x_max - 4) as usize],
            color
        );
        assert_ne!(
            c.pixels[(y_min + 4) as usize * c.width + (x_min + 4) as usize],
            color
        );
    }

    #[test]
    fn bar_chart_draws_bars_and_legend() {
        let groups: Vec<String> = vec![
            "raw pixels (no network)".into(),
            "random-init ResNet-18".into(),
            "BYOL-pretrained ResNet-18 x".into(),
        ];
        let a = [50, 100, 150];
        let b = [150, 100, 50];
        let bars = vec![
            BarSeries {
                name: "kNN".into(),
                values: vec![0.31, 0.22, 0.71],
                color: a,
            },
            BarSeries {
                name: "linear".into(),
                values: vec![0.35, f32::NAN],
                color: b,
            },
        ];
        let c = bar_chart("Ablation", "accuracy", &groups, &bars);
        assert_eq!((c.width, c.height), CHART_SIZE);
        assert!(has_color(&c, a) && has_color(&c, b));
        // The tallest bar (0.71) has more pixels of colour a than b has in
        // total (0.35 only, plus its legend block).
        let count = |color| c.pixels.iter().filter(|&&p| p == color).count();
        assert!(count(a) > count(b));
    }

    #[test]
    fn bar_chart_with_nothing_or_zeros_does_not_panic() {
        bar_chart("empty", "y", &[], &[]);
        let zeros = BarSeries {
            name: "z".into(),
            values: vec![0.0, 0.0],
            color: [9, 9, 9],
        };
        bar_chart("zeros", "y", &["a".into(), "b".into()], &[zeros]);
        let negative = BarSeries {
            name: "n".into(),
            values: vec![-2.0, 3.0],
            color: [9, 99, 9],
        };
        let c = bar_chart("negative", "y", &["a".into(), "b".into()], &[negative]);
        assert!(has_color(&c, [9, 99, 9]));
    }

    #[test]
    fn scatter_colours_points_by_class() {
        let points: Vec<[f32; 2]> = (0..30).map(|i| [i as f32, (i * i) as f32]).collect();
        let labels: Vec<u32> = (0..30).map(|i| i % 3).collect();
        let panel = ScatterPanel {
            title: "a".into(),
            points,
            labels,
        };
        let mut constant = panel.clone();
        constant.points = vec![[1.0, 1.0]; 30];
        constant.labels.truncate(10);
        let c = scatter_panels("title", &[panel, constant], &["zero", "one", "two"]);
        assert_eq!((c.width, c.height), (1000, SCATTER_HEIGHT));
        for (k, &color) in PALETTE.iter().take(3).enumerate() {
            assert!(has_color(&c, color), "class {k}");
        }
        assert!(has_color(&c, UNLABELLED));
        assert!(!has_color(&c, PALETTE[3]));
    }

    #[test]
    fn scatter_of_nothing_does_not_panic() {
        scatter_panels("nothing", &[], &[]);
        let panel = ScatterPanel {
            title: "nan".into(),
            points: vec![[f32::NAN, 0.0]],
            labels: vec![5],
        };
        let c = scatter_panels("nan", &[panel], &[]);
        assert!(!has_color(&c, PALETTE[5]));
    }
}
