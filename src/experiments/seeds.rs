//! Several seeds: each model trained at every seed, summarised as mean +- standard deviation,
//! and the seed report's observations judged with that spread.
//!
//! One seed says little: measured over 10 epochs, h64's test MSE ranges over 0.0131-0.0175
//! between seeds 0-4 (issue #18), as wide as the differences the study draws conclusions
//! from. So an observation "a < b < c" is judged on the means and their intervals
//! (mean +- sd over the seeds):
//!
//! - **holds**: the means are in order and neighbouring intervals do not overlap;
//! - **holds within noise**: the means are in order but some neighbouring intervals overlap;
//! - **does not hold**: some pair of means is out of order.
//!
//! With one seed there is no spread (sd 0), so only *holds* or *does not hold* can come out,
//! and the report says that the judgement rests on one seed.
//!
//! The sparse AE's "error rises with lambda" needs care: at lambda = 0.1 and 1 the L1 term
//! can drive every code unit to zero for every input (the code dies); the decoder then
//! outputs one image for all inputs, and the two errors are both that image's error, equal
//! up to noise whatever their order. A code is called dead when its mean |code| over the
//! test set is exactly 0 at every seed (a ReLU's output is exactly 0 when it is off).

use anyhow::{Context as _, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// Mean and sample standard deviation of a list of values (sd 0 for a single value).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub mean: f64,
    pub sd: f64,
    pub n: usize,
}

impl Spread {
    pub fn of(values: &[f64]) -> Spread {
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let sd =
            if n > 1 { (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() } else { 0.0 };
        Spread { mean, sd, n }
    }

    /// "0.01540 ± 0.00190" (or just the value, for one).
    pub fn show(&self, decimals: usize) -> String {
        if self.n > 1 {
            format!("{:.*} ± {:.*}", decimals, self.mean, decimals, self.sd)
        } else {
            format!("{:.*}", decimals, self.mean)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Holds,
    WithinNoise,
    DoesNotHold,
}

impl Verdict {
    pub fn words(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::WithinNoise => "holds within noise",
            Verdict::DoesNotHold => "does not hold",
        }
    }
}

/// The verdict on `chain[0] < chain[1] < ...` (see the module comment).
pub fn judge_increasing(chain: &[Spread]) -> Verdict {
    let mut verdict = Verdict::Holds;
    for w in chain.windows(2) {
        let (a, b) = (w[0], w[1]);
        if a.mean >= b.mean {
            return Verdict::DoesNotHold;
        }
        if a.mean + a.sd >= b.mean - b.sd {
            verdict = Verdict::WithinNoise;
        }
    }
    verdict
}

/// What PyTorch's runs of each model gave: test MSE per pixel and mean |code|, one entry
/// per line of the peer file (JSON lines printed by `../shared/peers/torch_ref.py`).
pub type PeerRuns = BTreeMap<String, Vec<(f64, f64)>>;

/// Reads a peer file: one JSON object per line with `model` and `test_mse_per_pixel` (and
/// `mean_abs_code`); blank lines are skipped, anything else is an error naming the line.
pub fn read_peer(path: &Path) -> Result<PeerRuns> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!("--peer {}: cannot read it; give the JSON lines torch_ref.py printed", path.display())
    })?;
    parse_peer(&text).with_context(|| format!("--peer {}", path.display()))
}

pub fn parse_peer(text: &str) -> Result<PeerRuns> {
    let mut runs = PeerRuns::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("line {} is not JSON; each line must be one run of torch_ref.py", i + 1))?;
        let model = v["model"].as_str().with_context(|| format!("line {} has no \"model\"", i + 1))?;
        let Some(mse) = v["test_mse_per_pixel"].as_f64() else {
            anyhow::bail!("line {} has no number \"test_mse_per_pixel\"", i + 1)
        };
        let code = v["mean_abs_code"].as_f64().unwrap_or(f64::NAN);
        runs.entry(model.to_string()).or_default().push((mse, code));
    }
    if runs.is_empty() {
        anyhow::bail!("no runs in the file; give the JSON lines torch_ref.py printed");
    }
    Ok(runs)
}

/// PyTorch's test MSE of `model` over its runs, if the peer file has any.
pub fn peer_mse(peer: &PeerRuns, model: &str) -> Option<Spread> {
    peer.get(model).map(|runs| Spread::of(&runs.iter().map(|r| r.0).collect::<Vec<_>>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(mean: f64, sd: f64) -> Spread {
        Spread { mean, sd, n: 5 }
    }

    #[test]
    fn the_three_verdicts() {
        assert_eq!(judge_increasing(&[s(1.0, 0.1), s(2.0, 0.1), s(3.0, 0.1)]), Verdict::Holds);
        assert_eq!(judge_increasing(&[s(1.0, 0.6), s(2.0, 0.6), s(3.0, 0.1)]), Verdict::WithinNoise);
        assert_eq!(judge_increasing(&[s(1.0, 0.1), s(3.0, 0.1), s(2.0, 0.1)]), Verdict::DoesNotHold);
    }

    #[test]
    fn spread_is_the_sample_standard_deviation() {
        let sp = Spread::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!((sp.mean, sp.n), (2.5, 4));
        assert!((sp.sd - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
        assert_eq!(Spread::of(&[7.0]).sd, 0.0);
    }

    #[test]
    fn peer_lines_are_read_and_bad_ones_named() {
        let runs = parse_peer("{\"model\":\"h64\",\"test_mse_per_pixel\":0.016,\"mean_abs_code\":1.5}\n\n{\"model\":\"h64\",\"test_mse_per_pixel\":0.014}\n").unwrap();
        assert_eq!(runs["h64"].len(), 2);
        assert!((peer_mse(&runs, "h64").unwrap().mean - 0.015).abs() < 1e-12);
        let err = format!("{:#}", parse_peer("{\"model\":\"h64\"}\nnot json").unwrap_err());
        assert!(err.contains("line 1"), "{err}");
    }
}
