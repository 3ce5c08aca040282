//! The graph of a training step: the tape after one forward pass and loss, drawn.
//!
//! Every tape entry becomes a node (its op, its output shape, the bytes its backward rule
//! reads, and which gradients that rule computes), and every input of an op an edge from
//! that input's node. The parameters, the input batch, the target and the loss are nodes of
//! their own kinds, drawn apart from the intermediate values. A max-unpool reuses the indices
//! of the pool it undoes (the same `Arc`, see `ops::pool::Indices`); each such pairing is an
//! edge of a second kind, from the pool to the unpool, which is no input of the tape.
//!
//! `tape` is what the tape shows of itself (`Tape::nodes`); `dot` writes the graph as
//! Graphviz DOT and reads DOT back; `svg` draws it without an external program, laid out by
//! the `layout-rs` crate.

pub mod dot;
pub mod svg;
pub mod tape;

use crate::autograd::{Tape, Var};
use crate::models::{Model, PIXELS};
use crate::ops::pool::IndexData;
use crate::tensor::{rng_from_seed, Tensor};
use std::sync::Arc;
pub use tape::NodeInfo;

/// What a node stands for, which decides how it is drawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A parameter, by its name ("encoder.0.weight").
    Param(String),
    /// The batch of images fed to the model.
    Input,
    /// What the loss compares the output with.
    Target,
    /// An intermediate value: an op's output.
    Op,
    /// The scalar backward starts from.
    Loss,
}

/// One tape entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// "linear", "relu", ..., "leaf".
    pub op: &'static str,
    pub kind: Kind,
    pub shape: Vec<usize>,
    /// Bytes of the values its backward rule reads (`NodeInfo::saved_bytes`).
    pub saved_bytes: usize,
    /// The gradients its backward rule computes, named as the rule names them ("dx", "dw").
    pub computes: Vec<&'static str>,
}

/// An input of an op, or the indices a pool hands to an unpool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeKind {
    Value,
    Indices,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    pub kind: EdgeKind,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    /// The model's name, which the DOT graph is named after.
    pub name: String,
    /// Node i is the tape's `Var(i)`.
    pub nodes: Vec<Node>,
    /// The value edges in tape order (each node's inputs in its op's order), then the index links.
    pub edges: Vec<Edge>,
}

/// Images in the batch the graph is recorded with: the command line's default batch size.
pub const BATCH: usize = 64;

impl Graph {
    /// The graph of one training step of `model` on a batch of `n` images (any values: the
    /// graph depends on the shapes only), as `Model::step` records it before backward.
    pub fn of_step(model: &Model, n: usize, l1: f32) -> Graph {
        let batch = Tensor::uniform(&[n, PIXELS], 1.0, &mut rng_from_seed(0));
        let mut tape = Tape::new().with_kernels(model.kernels);
        let (params, fwd) = model.forward(&mut tape, &batch);
        let loss = model.loss(&mut tape, &fwd, &batch, l1);
        let names: Vec<(Var, String)> = params.iter().zip(&model.params).map(|(&v, p)| (v, p.name.clone())).collect();
        Graph::from_tape(&model.name(), &tape, &names, loss)
    }

    /// The graph of everything on `tape` up to `loss`; `params` names the parameters.
    pub fn from_tape(name: &str, tape: &Tape, params: &[(Var, String)], loss: Var) -> Graph {
        let infos = tape.nodes();
        let infos = &infos[..=loss.0];
        // The leaves an MSE compares with are targets; the other leaves without a gradient, inputs.
        let targets: Vec<usize> = infos.iter().filter(|n| n.op == "mse").map(|n| n.inputs[1].0).collect();
        let nodes = infos
            .iter()
            .enumerate()
            .map(|(i, info)| {
                let kind = if i == loss.0 {
                    Kind::Loss
                } else if let Some((_, name)) = params.iter().find(|(v, _)| v.0 == i) {
                    Kind::Param(name.clone())
                } else if info.op == "leaf" && targets.contains(&i) {
                    Kind::Target
                } else if info.op == "leaf" {
                    Kind::Input
                } else {
                    Kind::Op
                };
                let computes = gradient_names(info.op, info.inputs.len())
                    .iter()
                    .zip(&info.inputs)
                    .filter(|(_, v)| info.requires_grad && infos[v.0].requires_grad)
                    .map(|(&g, _)| g)
                    .collect();
                Node { op: info.op, kind, shape: info.shape.to_vec(), saved_bytes: info.saved_bytes, computes }
            })
            .collect();
        let mut edges: Vec<Edge> = infos
            .iter()
            .enumerate()
            .flat_map(|(to, info)| info.inputs.iter().map(move |v| Edge { from: v.0, to, kind: EdgeKind::Value }))
            .collect();
        edges.extend(index_links(infos));
        Graph { name: name.to_string(), nodes, edges }
    }

    /// The number of edges of `kind`.
    pub fn count(&self, kind: EdgeKind) -> usize {
        self.edges.iter().filter(|e| e.kind == kind).count()
    }
}

/// The gradient each input of `op` receives, in the order of its inputs (as its backward
/// rule in `ops/` names them).
fn gradient_names(op: &str, inputs: usize) -> &'static [&'static str] {
    match (op, inputs) {
        ("linear" | "conv2d" | "conv_transpose2d", _) => &["dx", "dw", "db"],
        ("add", _) => &["da", "db"],
        ("mse", _) => &["dx", "dtarget"],
        (_, 1) => &["dx"],
        _ => &[],
    }
}

/// An edge from each max-pool to every unpool that reuses its indices.
fn index_links(infos: &[NodeInfo]) -> Vec<Edge> {
    let same = |a: &IndexData, b: &IndexData| match (a, b) {
        (IndexData::Cpu(a), IndexData::Cpu(b)) => Arc::ptr_eq(a, b),
        (IndexData::Cuda(a), IndexData::Cuda(b)) => Arc::ptr_eq(a, b),
        _ => false,
    };
    let mut links = Vec::new();
    // A node recorded without a gradient keeps no indices (`Op::Detached`), and links nothing.
    for (to, unpool) in infos.iter().enumerate().filter(|(_, n)| n.op == "max_unpool2d") {
        let Some(indices) = unpool.indices else { continue };
        let pools = infos[..to].iter().enumerate().filter(|(_, n)| n.op == "max_pool2d");
        for (from, _) in pools.filter(|(_, n)| n.indices.is_some_and(|i| same(&i.data, &indices.data))) {
            links.push(Edge { from, to, kind: EdgeKind::Indices });
        }
    }
    links
}

/// "64x16x7x7".
pub fn shape_text(shape: &[usize]) -> String {
    shape.iter().map(usize::to_string).collect::<Vec<_>>().join("x")
}

/// Bytes in B, kB or MB (powers of 1000), with three significant digits.
pub fn bytes_text(bytes: usize) -> String {
    let (value, unit) = match bytes {
        0..1000 => return format!("{bytes} B"),
        1000..1_000_000 => (bytes as f64 / 1e3, "kB"),
        _ => (bytes as f64 / 1e6, "MB"),
    };
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.decimals$} {unit}")
}

/// Writes `<stem>.dot` and `<stem>.svg` of `graph` into `dir` (each to a temporary sibling,
/// renamed into place); returns their paths.
pub fn write_files(graph: &Graph, dir: &std::path::Path, stem: &str) -> anyhow::Result<[std::path::PathBuf; 2]> {
    use anyhow::Context as _;
    let drawing = svg::render(graph).map_err(|e| anyhow::anyhow!("cannot draw the graph of {}: {e}", graph.name))?;
    let paths = [dir.join(format!("{stem}.dot")), dir.join(format!("{stem}.svg"))];
    for (path, text) in paths.iter().zip([dot::write(graph), drawing]) {
        crate::io::write_atomic(path, text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(paths)
}
