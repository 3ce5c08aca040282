//! The report's tables over one or more seeds: test MSE per model (mean ± sd, the seed
//! report's figure, PyTorch's mean ± sd when a peer file is given), the seed's observations
//! judged with the spread (`seeds::judge_increasing`), and the probe table of the
//! "Representations" section. Every number comes from the runs (and the peer file).

use super::report::{escape, reference};
use super::seeds::{judge_increasing, peer_mse, PeerRuns, Spread, Verdict};
use super::Outcome;
use serde_json::Value;
use std::fmt::Write as _;

/// The runs of a report: each seed's outcomes (every section, and the probe's), seed order.
pub struct Seeds<'a> {
    pub seeds: &'a [u64],
    pub runs: &'a [Vec<Outcome>],
    pub peer: Option<&'a PeerRuns>,
}

impl Seeds<'_> {
    /// `f` of `model` at every seed that trained it, as a spread.
    fn spread(&self, model: &str, f: impl Fn(&super::RunResult) -> f64) -> Option<Spread> {
        let v: Vec<f64> =
            self.runs.iter().filter_map(|o| o.iter().flat_map(|o| &o.runs).find(|r| r.model == model)).map(f).collect();
        (!v.is_empty()).then(|| Spread::of(&v))
    }

    pub fn mse(&self, model: &str) -> Option<Spread> {
        self.spread(model, |r| r.eval.mse)
    }

    pub fn activation(&self, model: &str) -> Option<Spread> {
        self.spread(model, |r| r.eval.mean_activation)
    }

    /// PCA's test MSE (the same at every seed: PCA has no randomness).
    fn pca(&self) -> Option<Spread> {
        let v: Vec<f64> = self.runs.iter().filter_map(|o| o.iter().find_map(|o| o.pca_test_mse)).collect();
        (!v.is_empty()).then(|| Spread::of(&v))
    }

    /// Whether a model's code is dead: mean |code| exactly 0 at every seed.
    fn dead(&self, model: &str) -> bool {
        self.activation(model).is_some_and(|a| a.mean == 0.0 && a.sd == 0.0)
    }
}

/// The test-MSE table.
pub fn mse_table(s: &Seeds) -> String {
    let n = s.runs.len();
    let mut html = format!(
        "<table><tr><th>model</th><th>this run{}</th><th>reference</th><th>from</th>{}<th>mean |code|</th></tr>",
        if n > 1 { format!(": mean ± sd over {n} seeds") } else { String::new() },
        if s.peer.is_some() { "<th>PyTorch: mean ± sd (runs)</th>" } else { "" }
    );
    let mut row = |name: &str, mse: Spread, act: Option<Spread>| {
        let (rv, who) = reference(name).map_or((String::new(), ""), |(v, w)| (format!("{v:.4}"), w));
        let peer = s.peer.map(|p| {
            peer_mse(p, name).map_or("<td></td>".to_string(), |m| format!("<td>{} ({})</td>", m.show(5), m.n))
        });
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{rv}</td><td>{who}</td>{}<td>{}</td></tr>",
            escape(name),
            mse.show(5),
            peer.unwrap_or_default(),
            act.map_or(String::new(), |a| a.show(4))
        );
    };
    if let Some(pca) = s.pca() {
        row("pca", pca, None);
    }
    let models: Vec<String> =
        s.runs.first().into_iter().flatten().flat_map(|o| &o.runs).map(|r| r.model.clone()).collect();
    for m in &models {
        row(m, s.mse(m).expect("trained at the first seed"), s.activation(m));
    }
    html.push_str("</table>");
    html
}

/// The seed report's observations, each judged with the spread over the seeds: what, the
/// verdict, and the numbers it rests on.
pub fn observations(s: &Seeds) -> Vec<(String, Verdict, String)> {
    let mut out = Vec::new();
    let mut killed = None;
    let mut judge = |what: &str, chain: &[(&str, Option<Spread>)]| {
        let Some(v): Option<Vec<Spread>> = chain.iter().map(|c| c.1).collect() else { return };
        let numbers: Vec<String> =
            chain.iter().zip(&v).map(|((name, _), sp)| format!("{name} {}", sp.show(5))).collect();
        out.push((what.to_string(), judge_increasing(&v), numbers.join(" < ")));
    };
    judge("error falls as h grows", &[("h256", s.mse("h256")), ("h128", s.mse("h128")), ("h64", s.mse("h64"))]);
    let sparse = ["sparse-0.001", "sparse-0.1", "sparse-1"];
    if s.dead(sparse[1]) && s.dead(sparse[2]) {
        // Both codes dead: their errors are one fixed image's error, so only the first step
        // is an ordering; the rest is said as what it is.
        judge(
            "error rises with lambda, from 0.001 to 0.1",
            &[(sparse[0], s.mse(sparse[0])), (sparse[1], s.mse(sparse[1]))],
        );
        let (a, b) = (s.mse(sparse[1]).expect("dead, so trained"), s.mse(sparse[2]).expect("dead, so trained"));
        killed = Some((
            "lambda = 0.1 and lambda = 1 both kill the code".to_string(),
            Verdict::Holds,
            format!(
                "mean |code| 0 at every seed for both; every input decodes to the same image, so their errors ({} and {}) are that image's error, not an ordering",
                a.show(5),
                b.show(5)
            ),
        ));
    } else {
        judge("error rises with lambda", &sparse.map(|m| (m, s.mse(m))));
    }
    let denoise = ["denoise-0.1", "denoise-0.3", "denoise-0.7"];
    judge("error rises with sigma", &denoise.map(|m| (m, s.mse(m))));
    judge(
        "sparse codes are sparser than the plain h900 AE's (mean |code|)",
        &[("sparse-0.001", s.activation("sparse-0.001")), ("h900", s.activation("h900"))],
    );
    judge("the deep AE beats PCA", &[("ae", s.mse("ae")), ("pca", s.pca())]);
    let cae = ["cae-deconv-unpool", "cae-unpool", "cae-deconv"];
    judge("CAE: deconv+unpool < unpool < deconv (the PyTorch peer's order)", &cae.map(|m| (m, s.mse(m))));
    out.extend(killed);
    out
}

pub fn observations_html(s: &Seeds) -> String {
    let mut html = String::from("<ul>");
    for (what, verdict, numbers) in observations(s) {
        let class = match verdict {
            Verdict::Holds => "ok",
            Verdict::WithinNoise => "noise",
            Verdict::DoesNotHold => "no",
        };
        let _ =
            write!(html, "<li class=\"{class}\">{}: {} ({})</li>", verdict.words(), escape(&what), escape(&numbers));
    }
    html.push_str("</ul>");
    if s.runs.len() == 1 {
        html.push_str("<p class=\"note\">One seed: no spread to judge with, so nothing can hold only within noise. Run with --seeds 3 or more.</p>");
    }
    html
}

/// The probe table's cells, from the `probe` outcome of each seed (mean ± sd over them):
/// codes, units, linear probe %, 5-NN %, test MSE, mean |code|; and the number of seeds.
fn probe_cells(s: &Seeds) -> Option<(usize, Vec<[String; 6]>)> {
    let tables: Vec<&Vec<Value>> = s
        .runs
        .iter()
        .filter_map(|o| o.iter().find(|o| o.experiment == "probe").and_then(|o| o.extra.get("probe")?.as_array()))
        .collect();
    let first = tables.first()?;
    let cells = first
        .iter()
        .map(|row| {
            let name = row["name"].as_str().unwrap_or("");
            let over = |key: &str, scale: f64, decimals: usize| -> String {
                let v: Vec<f64> = tables
                    .iter()
                    .filter_map(|t| t.iter().find(|r| r["name"] == name)?.get(key)?.as_f64())
                    .map(|v| v * scale)
                    .collect();
                if v.is_empty() {
                    "-".into()
                } else {
                    Spread::of(&v).show(decimals)
                }
            };
            [
                name.to_string(),
                row["code_size"].to_string(),
                over("linear_probe", 100.0, 2) + "%",
                over("knn", 100.0, 2) + "%",
                over("test_mse", 1.0, 5),
                over("mean_abs_code", 1.0, 4),
            ]
        })
        .collect();
    Some((tables.len(), cells))
}

const PROBE_HEADER: [&str; 6] = ["codes", "units", "linear probe", "5-NN", "test MSE", "mean |code|"];

/// The probe table of the "Representations" section.
pub fn probe_table(s: &Seeds) -> Option<String> {
    let (n, cells) = probe_cells(s)?;
    let mut html = String::from("<table>");
    if n > 1 {
        let _ = write!(html, "<caption>mean ± sd over {n} seeds</caption>");
    }
    let _ = write!(html, "<tr>{}</tr>", PROBE_HEADER.map(|h| format!("<th>{}</th>", escape(h))).concat());
    for row in cells {
        let _ = write!(html, "<tr>{}</tr>", row.map(|c| format!("<td>{}</td>", escape(&c))).concat());
    }
    html.push_str("</table>");
    Some(html)
}

/// The same table as text lines, for the terminal.
pub fn probe_lines(s: &Seeds) -> Vec<String> {
    let Some((n, cells)) = probe_cells(s) else { return Vec::new() };
    let line = |c: [&str; 6]| format!("{:<18} {:>6} {:>16} {:>16} {:>18} {:>16}", c[0], c[1], c[2], c[3], c[4], c[5]);
    let mut lines = vec![line(PROBE_HEADER)];
    lines.extend(cells.iter().map(|c| line(c.each_ref().map(String::as_str))));
    if n > 1 {
        lines.push(format!("(mean ± sd over {n} seeds)"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiments::RunResult;
    use crate::train::{Evaluation, History};

    fn seed(runs: &[(&str, f64, f64)]) -> Vec<Outcome> {
        let runs = runs
            .iter()
            .map(|&(m, mse, act)| RunResult {
                model: m.into(),
                eval: Evaluation { mse, mean_activation: act },
                history: History::default(),
            })
            .collect();
        vec![Outcome { experiment: "x".into(), runs, ..Outcome::default() }]
    }

    /// Three seeds: h sizes ordered with their intervals apart; lambda 0.1 and 1 dead at
    /// every seed (equal errors in the "wrong" order), said as killing the code; sigma
    /// ordered only in the means.
    #[test]
    fn observations_over_seeds() {
        let runs: Vec<Vec<Outcome>> = [0.0, 0.001, -0.001]
            .iter()
            .map(|&e| {
                seed(&[
                    ("h64", 0.015 + e, 1.0),
                    ("h128", 0.010 + e, 1.0),
                    ("h256", 0.007 + e, 1.0),
                    ("sparse-0.001", 0.03 + e, 0.01),
                    ("sparse-0.1", 0.0702, 0.0),
                    ("sparse-1", 0.0701, 0.0),
                    ("denoise-0.1", 0.0100 + 10.0 * e, 1.0),
                    ("denoise-0.3", 0.0110, 1.0),
                    ("denoise-0.7", 0.0200, 1.0),
                ])
            })
            .collect();
        let s = Seeds { seeds: &[0, 1, 2], runs: &runs, peer: None };
        let got: Vec<(String, Verdict)> = observations(&s).into_iter().map(|(w, v, _)| (w, v)).collect();
        assert_eq!(
            got,
            vec![
                ("error falls as h grows".to_string(), Verdict::Holds),
                ("error rises with lambda, from 0.001 to 0.1".to_string(), Verdict::Holds),
                ("error rises with sigma".to_string(), Verdict::WithinNoise),
                ("lambda = 0.1 and lambda = 1 both kill the code".to_string(), Verdict::Holds),
            ]
        );
    }
}
