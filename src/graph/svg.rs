//! The graph drawn as SVG without an external program.
//!
//! The layout is `layout-rs`'s (crates.io, pure Rust, no dependencies): a layered drawing
//! in the manner of Graphviz's `dot` (ranks from the edges, orderings that reduce
//! crossings, splines), which reads our DOT as Graphviz would, shapes, fills, dashed and
//! coloured edges included. Tried on the study's graphs it draws each op under its input
//! with the parameters beside it and the index links as long dashed curves, which is what a
//! reader needs; a layout of our own would have been a longest-path layering and a
//! barycentre ordering, the first steps of the same method. Its edge labels land far from
//! their edges, so the graph has none and the SVG carries a legend instead.
//!
//! The DOT goes through the parser first, so every SVG drawn is also a DOT that parsed.

use super::{dot, Graph};

/// Height of the band above the drawing that holds the title and the legend, in SVG units (pixels).
const LEGEND_HEIGHT: f64 = 90.0;

const LEGEND: [&str; 4] = [
    "white box: an op (its output's shape; the bytes its backward rule reads; the gradients it computes)",
    "khaki ellipse: a parameter; blue box: the input batch or the target; salmon box: the loss",
    "solid arrow: an input of the op; dashed red arrow: the pool indices an unpool reuses",
    "backward walks the arrows in reverse, from the loss up",
];

pub fn render(graph: &Graph) -> Result<String, String> {
    let text = dot::write(graph);
    let ast = layout::gv::DotParser::new(&text).process()?;
    let mut builder = layout::gv::GraphBuilder::new();
    builder.visit_graph(&ast);
    let mut visual = builder.get();
    let mut svg = layout::backends::svg::SVGWriter::new();
    // No debug drawing; crossing reduction and the layout both on.
    visual.do_it(false, false, false, &mut svg);
    with_legend(&svg.finalize(), &graph.name)
}

/// `svg` with the drawing moved down by a band holding the title and the legend.
fn with_legend(svg: &str, name: &str) -> Result<String, String> {
    let open = svg.find("<svg ").ok_or("layout-rs wrote no <svg> element")?;
    let end = open + svg[open..].find('>').ok_or("an unterminated <svg> tag")?;
    let number = |key: &str| -> Result<f64, String> {
        let tag = &svg[open..end];
        let at = tag.find(&format!(" {key}=\"")).ok_or(format!("the <svg> tag has no {key}"))? + key.len() + 3;
        let len = tag[at..].find('"').ok_or("an unterminated attribute")?;
        tag[at..at + len].parse().map_err(|_| format!("the <svg> {key} is not a number"))
    };
    let (w, h) = (number("width")?, number("height")?);
    let (w, grown) = (w.max(760.0), h + LEGEND_HEIGHT);
    let head = format!(
        "<svg width=\"{w}\" height=\"{grown}\" viewBox=\"0 0 {w} {grown}\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    let mut legend = format!(
        "<g font-family=\"sans-serif\" font-size=\"13\"><text x=\"10\" y=\"20\" font-weight=\"bold\">{name}: one training step's tape (forward and loss)</text>"
    );
    for (k, line) in LEGEND.iter().enumerate() {
        legend.push_str(&format!("<text x=\"10\" y=\"{}\">{line}</text>", 38 + 16 * k));
    }
    legend.push_str("</g>\n");
    let close = svg.rfind("</svg>").ok_or("layout-rs wrote no </svg>")?;
    let drawing = &svg[end + 1..close];
    Ok(format!(
        "{}{head}{legend}<g transform=\"translate(0, {LEGEND_HEIGHT})\">{drawing}</g>\n{}",
        &svg[..open],
        &svg[close..]
    ))
}
