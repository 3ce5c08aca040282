//! The graph as Graphviz DOT, and DOT read back.
//!
//! Node i of the graph is `n<i>`, labelled with its op (or parameter name), its shape, the
//! bytes its backward rule reads and the gradients it computes. Parameters are khaki
//! ellipses, the input batch and the target light blue boxes, the loss a salmon box, every
//! other op a white box; an index link is a dashed red edge. Every attribute is written on
//! its node or edge (no defaults), so a reader needs no scoping rules.
//!
//! The reader is `layout-rs`'s DOT parser (not ours), so a round trip through it checks
//! the writer against an independent reading of the grammar.

use super::{bytes_text, shape_text, EdgeKind, Graph, Kind, Node};
use std::fmt::Write as _;

/// A node's label, one line a field; DOT's `\n` is the line break.
pub fn label(node: &Node) -> String {
    let shape = shape_text(&node.shape);
    let mut lines = match &node.kind {
        Kind::Param(name) => vec![name.clone(), shape],
        Kind::Input => vec!["input batch".to_string(), shape],
        Kind::Target => vec!["target".to_string(), shape],
        Kind::Op => vec![node.op.to_string(), shape],
        Kind::Loss => vec![format!("loss = {}", node.op), shape],
    };
    if matches!(node.kind, Kind::Op | Kind::Loss) {
        if node.computes.is_empty() {
            lines.push("no gradient".to_string());
        } else {
            lines.push(format!("keeps {}", bytes_text(node.saved_bytes)));
            lines.push(format!("backward: {}", node.computes.join(" ")));
        }
    }
    lines.join("\n")
}

/// (shape, fill colour) of a node's kind.
fn style(kind: &Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Param(_) => ("ellipse", "khaki"),
        Kind::Input | Kind::Target => ("box", "lightblue"),
        Kind::Op => ("box", "white"),
        Kind::Loss => ("box", "salmon"),
    }
}

/// Escapes a label for a DOT string: quotes and backslashes, and line breaks as `\n`.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
}

pub fn write(graph: &Graph) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail: the `let _` discards an Ok.
    let _ = writeln!(out, "digraph {} {{", quoted(&graph.name));
    let _ = writeln!(out, "    rankdir=TB;");
    for (i, node) in graph.nodes.iter().enumerate() {
        let (shape, fill) = style(&node.kind);
        let _ =
            writeln!(out, "    n{i} [label={}, shape={shape}, style=filled, fillcolor={fill}];", quoted(&label(node)));
    }
    for e in &graph.edges {
        let attrs = match e.kind {
            EdgeKind::Value => "",
            EdgeKind::Indices => " [style=dashed, color=red, penwidth=2]",
        };
        let _ = writeln!(out, "    n{} -> n{}{attrs};", e.from, e.to);
    }
    out.push_str("}\n");
    out
}

/// A statement's attributes, (key, value) in the order written.
pub type Attrs = Vec<(String, String)>;

/// A DOT graph as read: its name, each node statement's id and attributes, and each edge
/// (a chain `a -> b -> c` is two) with the attributes of its statement.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dot {
    pub name: String,
    pub nodes: Vec<(String, Attrs)>,
    pub edges: Vec<(String, String, Attrs)>,
}

impl Dot {
    /// The value of attribute `key` in `attrs`, if set.
    pub fn attr<'a>(attrs: &'a [(String, String)], key: &str) -> Option<&'a str> {
        attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Parses DOT text with `layout-rs`'s parser; statements inside subgraphs are read too.
pub fn read(text: &str) -> Result<Dot, String> {
    use layout::gv::parser::ast::Stmt;
    let ast = layout::gv::DotParser::new(text).process()?;
    fn visit(list: &[Stmt], dot: &mut Dot) {
        for stmt in list {
            match stmt {
                Stmt::Node(n) => dot.nodes.push((n.id.name.clone(), n.list.list.clone())),
                Stmt::Edge(e) => {
                    let mut from = &e.from;
                    for (to, _) in &e.to {
                        dot.edges.push((from.name.clone(), to.name.clone(), e.list.list.clone()));
                        from = to;
                    }
                }
                Stmt::SubGraph(g) => visit(&g.list.list, dot),
                Stmt::Attribute(_) => {}
            }
        }
    }
    let mut dot = Dot { name: ast.name.clone(), ..Dot::default() };
    visit(&ast.list.list, &mut dot);
    Ok(dot)
}
