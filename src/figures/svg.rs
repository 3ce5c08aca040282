//! Line charts as self-contained SVG text (loss per epoch, loss per step).
//!
//! SVG is plain XML that any browser shows and that diffs as text, so a chart is a string
//! we build by hand: a white background, the plot box with light grid lines at the ticks,
//! tick labels, axis labels, a title, one polyline per series (with dot markers when there
//! are few points, so a single point is still visible) and a legend at the right.
//!
//! Ticks are "nice" numbers, 1, 2 or 5 times a power of ten, about five per axis: the data
//! span divided by 4 is rounded to the nearest nice step, and the axis is widened to the
//! multiples of the step around the data, so both ends carry a tick.
//! On a log axis the range is widened to whole decades, ticked at the powers of ten, with
//! 2x and 5x ticks added when it spans two decades or fewer (a loss that falls from 0.06 to
//! 0.012 would otherwise get just two ticks), and only every k-th decade when it spans many.
//!
//! Non-finite points are skipped (and non-positive y on a log axis, which has no place on
//! it); a constant series or a single point gets a range widened around its value.

use anyhow::{Context, Result};
use std::fmt::Write;
use std::path::Path;

/// One named line of a chart; points are (x, y).
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

// Canvas and plot box, in SVG user units (pixels). The legend sits to the right of the box.
const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 440.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 560.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 370.0;

/// Tableau-10, the matplotlib default cycle: ten colours that stay distinct in print and for
/// common colour-vision deficiencies. Past ten series, the cycle repeats with dashes.
pub(crate) const COLOURS: [&str; 10] =
    ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const DASHES: [&str; 3] = ["none", "7 4", "2 3"];

/// Draws the series as an SVG line chart; `log_y` plots y on a base-10 log scale.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series], log_y: bool) -> String {
    // The points that can be drawn, with y already in plot space (log10 when log_y).
    let drawn: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite() && (!log_y || *y > 0.0))
                .map(|&(x, y)| (x, if log_y { y.log10() } else { y }))
                .collect()
        })
        .collect();
    let all = || drawn.iter().flatten();
    let (xs, ys) = (data_range(all().map(|p| p.0)), data_range(all().map(|p| p.1)));
    let (x_lo, x_hi, x_ticks) = linear_ticks(xs);
    let (y_lo, y_hi, y_ticks) = if log_y { log_ticks(ys) } else { linear_ticks(ys) };
    let px = |x: f64| LEFT + frac(x, x_lo, x_hi) * (RIGHT - LEFT);
    let py = |y: f64| BOTTOM - frac(y, y_lo, y_hi) * (BOTTOM - TOP);

    let mut s = frame(title, x_label, y_label, &x_ticks, &y_ticks, px, py);
    // The series, then the legend entries in the same style.
    for (i, (ser, pts)) in series.iter().zip(&drawn).enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let dash = DASHES[(i / COLOURS.len()) % DASHES.len()];
        if pts.len() >= 2 {
            let coords: Vec<String> = pts.iter().map(|&(x, y)| format!("{:.2},{:.2}", px(x), py(y))).collect();
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}" points="{}"/>"#,
                coords.join(" ")
            );
        }
        if pts.len() <= 40 {
            for &(x, y) in pts {
                let _ = writeln!(s, r#"<circle cx="{:.2}" cy="{:.2}" r="3" fill="{colour}"/>"#, px(x), py(y));
            }
        }
        let ly = TOP + 10.0 + 20.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/>"#,
            RIGHT + 15.0,
            RIGHT + 40.0
        );
        let _ = writeln!(s, r#"<text x="{:.1}" y="{:.1}">{}</text>"#, RIGHT + 46.0, ly + 4.5, escape(&ser.name));
    }
    s.push_str("</svg>\n");
    s
}

/// What every chart of this module shares: the white canvas, the title, grid lines and tick
/// labels at the ticks, the plot box and the axis labels; `px` and `py` map data to the canvas.
pub(crate) fn frame(
    title: &str,
    x_label: &str,
    y_label: &str,
    x_ticks: &[(f64, String)],
    y_ticks: &[(f64, String)],
    px: impl Fn(f64) -> f64,
    py: impl Fn(f64) -> f64,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(s, r#"<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="28" text-anchor="middle" font-size="16" font-weight="bold">{}</text>"#,
        (LEFT + RIGHT) / 2.0,
        escape(title)
    );
    // Grid lines and tick labels.
    for (v, label) in x_ticks {
        let x = px(*v);
        let _ = writeln!(s, r##"<line x1="{x:.2}" y1="{TOP}" x2="{x:.2}" y2="{BOTTOM}" stroke="#e0e0e0"/>"##);
        let _ = writeln!(s, r#"<text x="{x:.2}" y="{:.1}" text-anchor="middle">{label}</text>"#, BOTTOM + 18.0);
    }
    for (v, label) in y_ticks {
        let y = py(*v);
        let _ = writeln!(s, r##"<line x1="{LEFT}" y1="{y:.2}" x2="{RIGHT}" y2="{y:.2}" stroke="#e0e0e0"/>"##);
        let _ = writeln!(s, r#"<text x="{:.1}" y="{:.2}" text-anchor="end">{label}</text>"#, LEFT - 6.0, y + 4.5);
    }
    let _ = writeln!(
        s,
        r#"<rect x="{LEFT}" y="{TOP}" width="{}" height="{}" fill="none" stroke="black"/>"#,
        RIGHT - LEFT,
        BOTTOM - TOP
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        (LEFT + RIGHT) / 2.0,
        BOTTOM + 45.0,
        escape(x_label)
    );
    let (yx, yy) = (22.0, (TOP + BOTTOM) / 2.0);
    let _ = writeln!(
        s,
        r#"<text x="{yx}" y="{yy:.1}" text-anchor="middle" transform="rotate(-90 {yx} {yy:.1})">{}</text>"#,
        escape(y_label)
    );
    s
}

/// Writes an SVG string to `path` atomically.
pub fn save_svg(path: &Path, svg: &str) -> Result<()> {
    crate::io::write_atomic(path, svg.as_bytes()).with_context(|| {
        format!("{}: cannot write the SVG; check the directory exists and is writable", path.display())
    })
}

/// Where v lies between lo (0) and hi (1). Everything is halved first (exact in binary)
/// so that hi - lo cannot overflow to infinity when the data spans most of the f64 range.
pub(crate) fn frac(v: f64, lo: f64, hi: f64) -> f64 {
    (v * 0.5 - lo * 0.5) / (hi * 0.5 - lo * 0.5)
}

/// (min, max) of the values, or None when there are none.
pub(crate) fn data_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |r, v| match r {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// The nice step nearest to `raw`: 1, 2 or 5 times a power of ten.
pub fn nice_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    mag * if f < 1.5 {
        1.0
    } else if f < 3.0 {
        2.0
    } else if f < 7.0 {
        5.0
    } else {
        10.0
    }
}

/// Axis range and (value, label) ticks for a linear axis over the data range (min, max),
/// or over [0, 1] when there is no data (see the module comment).
pub fn linear_ticks(range: Option<(f64, f64)>) -> (f64, f64, Vec<(f64, String)>) {
    let (mut lo, mut hi) = range.unwrap_or((0.0, 1.0));
    if hi - lo <= 1e-12 * hi.abs().max(lo.abs()) {
        // Constant data: widen by 10% of its value (or by 1 around 0) so it sits mid-axis.
        // Clamped: near the ends of f64 the widened ends would overflow to infinity.
        let d = if lo == 0.0 { 1.0 } else { 0.1 * lo.abs() };
        (lo, hi) = ((lo - d).max(f64::MIN), (hi + d).min(f64::MAX));
    }
    let step = nice_step((hi - lo) / 4.0);
    let (k0, k1) = ((lo / step).floor() as i64, (hi / step).ceil() as i64);
    if !(step.is_finite() && step > 0.0 && (k0 as f64 * step).is_finite() && (k1 as f64 * step).is_finite())
        || k1 - k0 > 20
    {
        // Only at the edges of f64 (spans that overflow, denormal constants): plain ends.
        let (lo, hi) = if hi > lo && (hi * 0.5 - lo * 0.5) > 0.0 { (lo, hi) } else { (-1.0, 1.0) };
        return (lo, hi, vec![(lo, format!("{lo:.3e}")), (hi, format!("{hi:.3e}"))]);
    }
    // Tick k is k * step, not a running sum, so labels carry no accumulated rounding error.
    let ticks: Vec<f64> = (k0..=k1).map(|k| k as f64 * step).collect();
    let max_abs = ticks.iter().fold(0.0f64, |m, t| m.max(t.abs()));
    let labels = ticks.iter().map(|&t| (t, linear_label(t, step, max_abs))).collect();
    (k0 as f64 * step, k1 as f64 * step, labels)
}

/// Enough decimals to tell ticks `step` apart; scientific notation for very large or small.
fn linear_label(v: f64, step: f64, max_abs: f64) -> String {
    let step_exp = step.log10().floor() as i32;
    if max_abs >= 1e5 || step < 1e-4 {
        let digits = (max_abs.log10().floor() as i32 - step_exp).max(0) as usize;
        if v == 0.0 {
            "0".into()
        } else {
            format!("{:.*e}", digits, v)
        }
    } else {
        let decimals = (-step_exp).max(0) as usize;
        let s = format!("{:.*}", decimals, v);
        if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
            s[1..].into()
        } else {
            s
        }
    }
}

/// Axis range and ticks for a base-10 log axis; the data range, the axis ends and the tick
/// positions are all in log10 units, the labels in plain units (see the module comment).
pub fn log_ticks(range: Option<(f64, f64)>) -> (f64, f64, Vec<(f64, String)>) {
    let (mut lo, mut hi) = range.unwrap_or((-1.0, 0.0));
    if hi - lo < 1e-9 {
        (lo, hi) = (lo - 0.5, hi + 0.5);
    }
    let (e0, e1) = (lo.floor() as i32, hi.ceil() as i32);
    let decades = e1 - e0;
    let every = ((decades + 5) / 6).max(1); // at most about 6 labelled decades
    let mut ticks = Vec::new();
    for e in e0..=e1 {
        if decades <= 2 {
            for m in [1, 2, 5] {
                if e < e1 || m == 1 {
                    ticks.push((e as f64 + (m as f64).log10(), log_label(m, e)));
                }
            }
        } else if (e - e0) % every == 0 {
            ticks.push((e as f64, log_label(1, e)));
        }
    }
    (e0 as f64, e1 as f64, ticks)
}

/// The label of m x 10^e, written plainly between 0.001 and 1000, else as "me<e>".
fn log_label(m: i32, e: i32) -> String {
    match e {
        0..=3 => (m as i64 * 10i64.pow(e as u32)).to_string(),
        -3..=-1 => format!("0.{}{m}", "0".repeat((-e - 1) as usize)),
        _ => format!("{m}e{e}"),
    }
}

/// Escapes text for XML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab/newline are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
