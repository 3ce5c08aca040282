//! The profile as a bar chart (SVG text): one horizontal bar per row, longest first,
//! coloured by phase, each labelled with its milliseconds and its share of the step.

use super::{Phase, Profile};
use std::fmt::Write as _;

const WIDTH: f64 = 760.0;
/// The left margin holds the row names; bars run from there to the right margin.
const LEFT: f64 = 200.0;
const RIGHT: f64 = 600.0;
const TOP: f64 = 60.0;
const ROW: f64 = 22.0;

/// Forward, backward and Adam in the first three colours of the line charts (Tableau-10).
fn colour(phase: Phase) -> &'static str {
    match phase {
        Phase::Forward => "#1f77b4",
        Phase::Backward => "#ff7f0e",
        Phase::Adam => "#2ca02c",
    }
}

pub fn bar_chart(profile: &Profile, title: &str) -> String {
    let rows = profile.sorted();
    let height = TOP + ROW * rows.len() as f64 + 50.0;
    let longest = rows.first().map_or(0.0, |r| r.seconds).max(f64::MIN_POSITIVE);
    let step = profile.step_seconds.max(f64::MIN_POSITIVE);
    let mut svg = String::new();
    // Writing into a String cannot fail: each `let _` discards an Ok.
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"24\" font-size=\"15\" text-anchor=\"middle\">{}</text>\n\
         <text x=\"{}\" y=\"44\" text-anchor=\"middle\" fill=\"#555\">{} steps, {:.2} ms a step; the rows hold {:.1}% of it</text>\n",
        WIDTH / 2.0,
        escape(title),
        WIDTH / 2.0,
        profile.steps,
        1e3 * profile.step_seconds / profile.steps.max(1) as f64,
        100.0 * profile.rows_seconds() / step
    );
    for (k, r) in rows.iter().enumerate() {
        let y = TOP + ROW * k as f64;
        let len = (RIGHT - LEFT) * r.seconds / longest;
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{} {}</text>\
             <rect x=\"{LEFT}\" y=\"{}\" width=\"{len:.1}\" height=\"{}\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{}\">{:.1} ms ({:.1}%)</text>",
            LEFT - 6.0,
            y + 15.0,
            r.phase.name(),
            if r.op == r.phase.name() { "" } else { r.op },
            y + 3.0,
            ROW - 6.0,
            colour(r.phase),
            LEFT + len + 4.0,
            y + 15.0,
            1e3 * r.seconds,
            100.0 * r.seconds / step
        );
    }
    let legend_y = TOP + ROW * rows.len() as f64 + 25.0;
    for (k, phase) in [Phase::Forward, Phase::Backward, Phase::Adam].into_iter().enumerate() {
        let x = LEFT + 120.0 * k as f64;
        let _ = writeln!(
            svg,
            "<rect x=\"{x}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{}\" y=\"{legend_y}\">{}</text>",
            legend_y - 10.0,
            colour(phase),
            x + 16.0,
            phase.name()
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
