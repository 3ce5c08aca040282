//! Two more SVG charts on the frame of `svg` (same canvas, plot box, ticks and legend place):
//! a scatter of points coloured by class (the 2-D maps of a model's codes) and grouped bars
//! (per-digit errors, one bar per series in each category).
//!
//! A map holds 10,000 points, so each is a bare `<circle>` naming its class (`class="c3"`),
//! coloured by one `<style>` rule per class, and the points are drawn in the order given
//! (the test set's, in which the classes are mixed), so no class is painted over all others.

use super::svg::{data_range, escape, frac, frame, linear_ticks, COLOURS};
use std::fmt::Write;

// The plot box of `svg::frame`, and where the legend starts.
const LEFT: f64 = 90.0;
const RIGHT: f64 = 560.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 370.0;

/// Points (x, y, class) coloured by class, with a legend naming each class in `classes`.
pub fn scatter_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[(f64, f64, usize)],
    classes: &[String],
) -> String {
    let finite: Vec<&(f64, f64, usize)> = points.iter().filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
    let (x_lo, x_hi, x_ticks) = linear_ticks(data_range(finite.iter().map(|p| p.0)));
    let (y_lo, y_hi, y_ticks) = linear_ticks(data_range(finite.iter().map(|p| p.1)));
    let px = |x: f64| LEFT + frac(x, x_lo, x_hi) * (RIGHT - LEFT);
    let py = |y: f64| BOTTOM - frac(y, y_lo, y_hi) * (BOTTOM - TOP);
    let mut s = frame(title, x_label, y_label, &x_ticks, &y_ticks, px, py);
    let rules: String = (0..classes.len()).map(|c| format!(".c{c}{{fill:{}}}", COLOURS[c % COLOURS.len()])).collect();
    let _ = writeln!(s, "<style>{rules}</style>");
    s.push_str("<g fill-opacity=\"0.6\">\n");
    for &&(x, y, c) in &finite {
        let _ = writeln!(s, r#"<circle class="c{c}" cx="{:.1}" cy="{:.1}" r="1.6"/>"#, px(x), py(y));
    }
    s.push_str("</g>\n");
    legend(&mut s, classes, |s, i, ly| {
        let _ = writeln!(s, r#"<circle class="c{i}" cx="{:.1}" cy="{ly:.1}" r="5"/>"#, RIGHT + 27.0);
    });
    s.push_str("</svg>\n");
    s
}

/// Grouped bars: for each category, one bar per series (`series[s].1[category]`), from 0.
/// Missing values (NaN) draw no bar.
pub fn bar_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
) -> String {
    let values = series.iter().flat_map(|(_, v)| v.iter().copied()).filter(|v| v.is_finite());
    let (y_lo, y_hi, y_ticks) = linear_ticks(data_range(values.chain([0.0])));
    let (x_lo, x_hi) = (-0.5, categories.len() as f64 - 0.5);
    let x_ticks: Vec<(f64, String)> = categories.iter().enumerate().map(|(i, c)| (i as f64, escape(c))).collect();
    let px = |x: f64| LEFT + frac(x, x_lo, x_hi) * (RIGHT - LEFT);
    let py = |y: f64| BOTTOM - frac(y, y_lo, y_hi) * (BOTTOM - TOP);
    let mut s = frame(title, x_label, y_label, &x_ticks, &y_ticks, px, py);
    // Each category's bars share 80% of its slot.
    let width = 0.8 / series.len().max(1) as f64;
    for (k, (_, v)) in series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        for (i, &y) in v.iter().enumerate().filter(|(_, y)| y.is_finite()) {
            let x0 = i as f64 - 0.4 + k as f64 * width;
            let (left, right, top, base) = (px(x0), px(x0 + width), py(y.max(0.0)), py(y.min(0.0)));
            let _ = writeln!(
                s,
                r#"<rect x="{left:.2}" y="{top:.2}" width="{:.2}" height="{:.2}" fill="{colour}"/>"#,
                right - left,
                base - top
            );
        }
    }
    let names: Vec<String> = series.iter().map(|(name, _)| name.clone()).collect();
    legend(&mut s, &names, |s, i, ly| {
        let colour = COLOURS[i % COLOURS.len()];
        let _ = writeln!(
            s,
            r#"<rect x="{:.1}" y="{:.1}" width="12" height="12" fill="{colour}"/>"#,
            RIGHT + 21.0,
            ly - 6.0
        );
    });
    s.push_str("</svg>\n");
    s
}

/// One legend entry per name at the right of the plot box: `mark` draws entry i's symbol.
fn legend(s: &mut String, names: &[String], mark: impl Fn(&mut String, usize, f64)) {
    for (i, name) in names.iter().enumerate() {
        let ly = TOP + 10.0 + 20.0 * i as f64;
        mark(s, i, ly);
        let _ = writeln!(s, r#"<text x="{:.1}" y="{:.1}">{}</text>"#, RIGHT + 40.0, ly + 4.5, escape(name));
    }
}
