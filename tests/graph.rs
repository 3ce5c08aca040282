//! The graph of a training step (src/graph/): its nodes and edges are the tape's, every
//! unpool is linked to the pool whose indices it reuses, the DOT reads back as written, and
//! the SVG is drawn.

use autoencoders::graph::{dot, svg, EdgeKind, Graph, Kind, BATCH};
use autoencoders::models::{Arch, Model};
use autoencoders::tensor::rng_from_seed;
use autoencoders::Tape;

const CAES: [Arch; 3] = [Arch::CaeUnpool, Arch::CaeDeconv, Arch::CaeDeconvUnpool];

fn all_archs() -> Vec<Arch> {
    let mut archs = vec![Arch::DeepAe, Arch::Shallow { hidden: 64 }, Arch::Manifold];
    archs.extend(CAES);
    archs
}

fn graph(arch: Arch) -> Graph {
    Graph::of_step(&Model::new(arch, &mut rng_from_seed(0)), BATCH, 0.0)
}

/// h64 is 784 -> 64 -> 64 -> 784, three linear layers each followed by a ReLU. Its tape:
/// 6 parameters, the batch, 3 linear + 3 relu, the target and the MSE: 15 nodes; edges,
/// 3 per linear (x, w, b), 1 per relu, 2 for the MSE: 14. Counted here by hand and on the
/// tape itself, and the graph must have both.
#[test]
fn h64_graph_has_its_tapes_nodes_and_edges() {
    let model = Model::new(Arch::Shallow { hidden: 64 }, &mut rng_from_seed(0));
    let g = Graph::of_step(&model, BATCH, 0.0);
    assert_eq!((g.nodes.len(), g.count(EdgeKind::Value)), (15, 14));
    assert_eq!(g.count(EdgeKind::Indices), 0, "no pools");

    let mut tape = Tape::new();
    let batch = autoencoders::Tensor::zeros(&[BATCH, 784]);
    let (_, fwd) = model.forward(&mut tape, &batch);
    model.loss(&mut tape, &fwd, &batch, 0.0);
    let nodes = tape.nodes();
    assert_eq!(g.nodes.len(), nodes.len());
    assert_eq!(g.count(EdgeKind::Value), nodes.iter().map(|n| n.inputs.len()).sum::<usize>());

    let kinds = |f: fn(&Kind) -> bool| g.nodes.iter().filter(|n| f(&n.kind)).count();
    assert_eq!(kinds(|k| matches!(k, Kind::Param(_))), 6);
    assert_eq!((kinds(|k| *k == Kind::Input), kinds(|k| *k == Kind::Target), kinds(|k| *k == Kind::Loss)), (1, 1, 1));
    // The first linear reads the batch and its weight (64 x 784) for backward, and computes no
    // dx: the batch needs no gradient.
    let first = g.nodes.iter().find(|n| n.op == "linear").expect("a linear layer");
    assert_eq!(first.saved_bytes, 4 * (BATCH * 784 + 64 * 784));
    assert_eq!(first.computes, ["dw", "db"]);
    assert_eq!(g.nodes.iter().rfind(|n| n.op == "linear").expect("a linear").computes, ["dx", "dw", "db"]);
}

/// Each unpool of a CAE links to exactly one pool, in bracket order (the first unpool undoes
/// the last pool), and the pool's output has the shape of the unpool's input.
#[test]
fn every_cae_links_each_unpool_to_its_pool() {
    for arch in CAES {
        let g = graph(arch);
        let of = |op: &str| (0..g.nodes.len()).filter(|&i| g.nodes[i].op == op).collect::<Vec<_>>();
        let (pools, unpools) = (of("max_pool2d"), of("max_unpool2d"));
        assert_eq!(pools.len(), 3, "{arch:?}: the shared encoder pools three times");
        let links: Vec<(usize, usize)> =
            g.edges.iter().filter(|e| e.kind == EdgeKind::Indices).map(|e| (e.from, e.to)).collect();
        let want: Vec<(usize, usize)> = unpools.iter().zip(pools.iter().rev()).map(|(&u, &p)| (p, u)).collect();
        assert_eq!(links, want, "{arch:?}");
        for (p, u) in links {
            let x = g.edges.iter().find(|e| e.to == u && e.kind == EdgeKind::Value).expect("an unpool's input").from;
            assert_eq!(g.nodes[p].shape, g.nodes[x].shape, "{arch:?}: pool {p} and the input of unpool {u}");
        }
    }
    assert_eq!(graph(Arch::CaeDeconv).count(EdgeKind::Indices), 0, "cae-deconv has no unpool");
    assert_eq!(graph(Arch::CaeUnpool).count(EdgeKind::Indices), 3);
}

/// The DOT, read back by layout-rs's parser, names every node with its label and kind's
/// colour and every edge with its kind; where Graphviz's `dot` is installed it must accept
/// the file too.
#[test]
fn dot_round_trips() {
    for arch in all_archs() {
        let g = graph(arch);
        let text = dot::write(&g);
        let read = dot::read(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", g.name));
        assert_eq!(read.name, g.name);
        assert_eq!(read.nodes.len(), g.nodes.len());
        for (i, ((id, attrs), node)) in read.nodes.iter().zip(&g.nodes).enumerate() {
            assert_eq!(id, &format!("n{i}"));
            assert_eq!(dot::Dot::attr(attrs, "label"), Some(dot::label(node).as_str()), "{}: n{i}", g.name);
            let fill = match node.kind {
                Kind::Param(_) => "khaki",
                Kind::Input | Kind::Target => "lightblue",
                Kind::Op => "white",
                Kind::Loss => "salmon",
            };
            assert_eq!(dot::Dot::attr(attrs, "fillcolor"), Some(fill));
        }
        let edges: Vec<(String, String, EdgeKind)> = read
            .edges
            .iter()
            .map(|(a, b, attrs)| {
                let kind =
                    if dot::Dot::attr(attrs, "style") == Some("dashed") { EdgeKind::Indices } else { EdgeKind::Value };
                (a.clone(), b.clone(), kind)
            })
            .collect();
        let want: Vec<(String, String, EdgeKind)> =
            g.edges.iter().map(|e| (format!("n{}", e.from), format!("n{}", e.to), e.kind)).collect();
        assert_eq!(edges, want, "{}", g.name);
    }
    // Graphviz itself, where installed.
    use std::process::{Command, Stdio};
    match Command::new("dot").arg("-Tsvg").stdin(Stdio::piped()).stdout(Stdio::null()).spawn() {
        Err(_) => eprintln!("skipped: Graphviz's dot is not installed, so only layout-rs read the DOT"),
        Ok(mut child) => {
            use std::io::Write as _;
            let text = dot::write(&graph(Arch::CaeUnpool));
            child.stdin.take().expect("a pipe").write_all(text.as_bytes()).expect("dot reads its input");
            assert!(child.wait().expect("dot ends").success(), "Graphviz's dot rejected the DOT");
        }
    }
}

/// The SVG of each model is one document holding every node's first label line and the legend.
#[test]
fn svg_draws_every_node() {
    for arch in all_archs() {
        let g = graph(arch);
        let text = svg::render(&g).unwrap_or_else(|e| panic!("{}: {e}", g.name));
        assert!(text.starts_with("<?xml"), "{}", g.name);
        assert_eq!(text.matches("<svg ").count(), 1);
        assert!(text.trim_end().ends_with("</svg>"));
        for node in &g.nodes {
            let first = dot::label(node).lines().next().expect("a label").to_string();
            assert!(text.contains(&format!(">{first}<")), "{}: no node labelled {first}", g.name);
        }
        assert!(text.contains("dashed red arrow"), "the legend");
    }
}

/// `autoencoders graph cae-unpool --out DIR` writes both files; a name that is no model is
/// refused with clap's exit code 2 and writes nothing.
#[test]
fn graph_command_writes_dot_and_svg() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let out = dir.path().join("graphs");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_autoencoders")).args(args).output().expect("the binary runs")
    };
    let done = run(&["graph", "cae-unpool", "--out", out.to_str().expect("a UTF-8 path")]);
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let dot = std::fs::read_to_string(out.join("cae-unpool.dot")).expect("the DOT");
    let read = dot::read(&dot).expect("it parses");
    assert_eq!(read.nodes.len(), graph(Arch::CaeUnpool).nodes.len());
    let svg = std::fs::read_to_string(out.join("cae-unpool.svg")).expect("the SVG");
    assert!(svg.contains("max_unpool2d") && svg.trim_end().ends_with("</svg>"));

    let refused = run(&["graph", "cae-nope", "--out", out.to_str().expect("a UTF-8 path")]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("cae-nope is not a model"));
    assert!(!out.join("cae-nope.dot").exists());
}
