//! `--profile`: where a training step's time goes, op by op, forward and backward apart.
//!
//! Switched on for the whole process (`enable`), it makes every recording tape carry a
//! `Timer`, which takes a mark each time the tape records a node and each time the walk has
//! run a backward rule or handed a gradient to Adam. Ops are eager, so when a node is pushed
//! its op has finished: the time since the previous mark is that op's. The training loop
//! times each whole step from outside (`Step`), so the rows can be checked against it: what
//! no row holds (the tape's bookkeeping, the walk's set-up) is the difference.
//!
//! On the GPU the ops only queue kernels, so host clocks would time the queueing. There a
//! mark is a CUDA event recorded on the one stream every kernel goes to, an op's time is
//! the elapsed time between the event before and after its kernels, and the events of a
//! step are read when its tape is dropped, after waiting on the step's last event (one
//! synchronisation per step: profiling on the GPU takes away the overlap of the host's
//! queueing with the GPU's work, and the step's time then includes that wait).
//!
//! Off, a tape checks one atomic flag when it is made and one `Option` per node.
//!
//! The rows count floating-point operations of the products (linear and convolutions, as
//! the dense products they stand for: the fast kernels' skipped zero terms included) and
//! bytes moved: the tensors an op reads and writes, each counted once, a lower bound of its
//! memory traffic.

pub mod chart;

use crate::autograd::{Node, Op};
use crate::tensor::{Device, Tensor};
use cudarc::driver::CudaEvent;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Which part of the step a row times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Forward,
    Backward,
    Adam,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Forward => "forward",
            Phase::Backward => "backward",
            Phase::Adam => "adam",
        }
    }
}

/// One op kind in one phase, summed over every call.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub phase: Phase,
    pub op: &'static str,
    pub calls: u64,
    pub seconds: f64,
    pub flops: f64,
    pub bytes: f64,
}

/// What a profiled run measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    pub rows: Vec<Row>,
    pub steps: u64,
    /// The whole steps, timed from outside the tape.
    pub step_seconds: f64,
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static PROFILE: Mutex<Profile> = Mutex::new(Profile { rows: Vec::new(), steps: 0, step_seconds: 0.0 });

/// Turns profiling on (or off) for every tape made from now on.
pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// What has been measured since the last `take`, which starts afresh.
pub fn take() -> Profile {
    std::mem::take(&mut *PROFILE.lock().unwrap_or_else(|e| e.into_inner()))
}

fn add(phase: Phase, op: &'static str, seconds: f64, (flops, bytes): (f64, f64)) {
    let mut profile = PROFILE.lock().unwrap_or_else(|e| e.into_inner());
    match profile.rows.iter_mut().find(|r| r.phase == phase && r.op == op) {
        Some(row) => {
            row.calls += 1;
            row.seconds += seconds;
            row.flops += flops;
            row.bytes += bytes;
        }
        None => profile.rows.push(Row { phase, op, calls: 1, seconds, flops, bytes }),
    }
}

/// A whole step timed from outside: `Step::start()` before it, `done()` after.
pub struct Step(Option<Instant>);

impl Step {
    pub fn start() -> Step {
        Step(enabled().then(Instant::now))
    }

    pub fn done(self) {
        if let Some(start) = self.0 {
            let seconds = start.elapsed().as_secs_f64();
            let mut profile = PROFILE.lock().unwrap_or_else(|e| e.into_inner());
            profile.steps += 1;
            profile.step_seconds += seconds;
        }
    }
}

/// The marks of one tape. On the CPU, the time of the last one; on the GPU, every event
/// recorded on the stream and the laps between them (lap k runs from event k to event k+1),
/// read when the tape lets go of the timer.
pub(crate) struct Timer {
    last: Instant,
    events: Vec<CudaEvent>,
    laps: Vec<(Phase, &'static str, (f64, f64))>,
}

impl Timer {
    /// A timer for a new tape when profiling is on.
    pub(crate) fn new() -> Option<Timer> {
        enabled().then(|| Timer { last: Instant::now(), events: Vec::new(), laps: Vec::new() })
    }

    /// Ends the lap of `op` (in `phase`, costing `cost`, see `cost`), whose work was queued
    /// on `device`, and starts the next.
    pub(crate) fn lap(&mut self, phase: Phase, op: &'static str, cost: (f64, f64), device: &Device) {
        match device {
            Device::Cpu => {
                let now = Instant::now();
                add(phase, op, now.duration_since(self.last).as_secs_f64(), cost);
                self.last = now;
            }
            Device::Cuda(gpu) => {
                // Timing events (the default flags); a driver too broken to record one fails
                // the next launch anyway, so the lap is dropped rather than the step.
                let Ok(event) = gpu.stream.record_event(Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT))
                else {
                    return;
                };
                // The first event only starts the laps (it follows a leaf: no kernel).
                if !self.events.is_empty() {
                    self.laps.push((phase, op, cost));
                }
                self.events.push(event);
            }
        }
    }
}

impl Timer {
    /// Ends the lap of a tape node's op (its forward, its backward rule), whose output is
    /// `value`; `nodes` holds its inputs. In the walk, leaves have no rule and take no lap.
    pub(crate) fn lap_node(&mut self, phase: Phase, op: &Op, value: &Tensor, nodes: &[Node]) {
        if phase == Phase::Backward && matches!(op, Op::Leaf | Op::Detached { .. }) {
            return;
        }
        let inputs: Vec<(&[usize], bool)> =
            op.inputs().iter().map(|v| (nodes[v.0].value.shape(), nodes[v.0].requires_grad)).collect();
        let cost = cost(phase, op.name(), &inputs, value.shape());
        self.lap(phase, op.name(), cost, &value.device());
    }
}

impl Drop for Timer {
    /// Reads the GPU's laps: `elapsed_ms` waits for both its events, so the first call waits
    /// for the step's work up to its end event, and so on to the last.
    fn drop(&mut self) {
        for (k, &(phase, op, cost)) in self.laps.iter().enumerate() {
            if let Ok(ms) = self.events[k].elapsed_ms(&self.events[k + 1]) {
                add(phase, op, ms as f64 / 1e3, cost);
            }
        }
    }
}

/// Floating-point operations and bytes moved of `op` in `phase`, from its inputs' shapes
/// (with whether each needs a gradient) and its output's.
pub(crate) fn cost(phase: Phase, op: &str, inputs: &[(&[usize], bool)], out: &[usize]) -> (f64, f64) {
    let len = |s: &[usize]| s.iter().product::<usize>() as f64;
    let out_len = len(out);
    // The products: 2 per multiply-add, forward; backward, one product like it per input
    // gradient among x and w (db and the others are sums, left out).
    let product = match (op, inputs) {
        ("linear", [(x, _), (w, _), ..]) => 2.0 * x[0] as f64 * len(w),
        ("conv2d", [_, (w, _), ..]) => 2.0 * out_len * len(&w[1..]),
        ("conv_transpose2d", [(x, _), (w, _), ..]) => 2.0 * len(x) * len(&w[1..]),
        _ => 0.0,
    };
    let read: f64 = inputs.iter().map(|(s, _)| len(s)).sum();
    if op == "leaf" {
        // Recording a parameter or a batch shares its buffer: nothing moves.
        return (0.0, 0.0);
    }
    match phase {
        Phase::Forward => (product, 4.0 * (read + out_len)),
        Phase::Backward => {
            let grads = inputs.iter().filter(|(_, g)| *g);
            let products = inputs.iter().take(2).filter(|(_, g)| *g).count() as f64;
            // dout and the values read; each gradient read and written (rules add into it).
            (product * products, 4.0 * (out_len + read) + 8.0 * grads.map(|(s, _)| len(s)).sum::<f64>())
        }
        // The parameter, its gradient and both moments read; the parameter and moments written.
        Phase::Adam => (0.0, 4.0 * 7.0 * out_len),
    }
}

impl Profile {
    /// The time all rows hold.
    pub fn rows_seconds(&self) -> f64 {
        self.rows.iter().map(|r| r.seconds).sum()
    }

    /// The rows from the longest to the shortest.
    pub fn sorted(&self) -> Vec<&Row> {
        let mut rows: Vec<&Row> = self.rows.iter().collect();
        rows.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        rows
    }

    /// GFLOP/s of a row that does products, else None.
    pub fn gflops(row: &Row) -> Option<f64> {
        (row.flops > 0.0 && row.seconds > 0.0).then(|| row.flops / row.seconds / 1e9)
    }

    /// The table printed at the end of a profiled run.
    pub fn table(&self, title: &str) -> String {
        let step = self.step_seconds.max(f64::MIN_POSITIVE);
        let mut out = format!(
            "profile of {title}: {} steps, {:.3} ms a step\n{:<9} {:<17} {:>8} {:>11} {:>9} {:>9} {:>12}\n",
            self.steps,
            1e3 * self.step_seconds / self.steps.max(1) as f64,
            "phase",
            "op",
            "calls",
            "total ms",
            "% of step",
            "GFLOP/s",
            "MB moved"
        );
        for r in self.sorted() {
            let rate = Profile::gflops(r).map_or("-".to_string(), |g| format!("{g:.2}"));
            out += &format!(
                "{:<9} {:<17} {:>8} {:>11.1} {:>9.1} {:>9} {:>12.1}\n",
                r.phase.name(),
                r.op,
                r.calls,
                1e3 * r.seconds,
                100.0 * r.seconds / step,
                rate,
                r.bytes / 1e6
            );
        }
        out += &format!(
            "{:<27} {:>8} {:>11.1} {:>9.1}\n{:<27} {:>8} {:>11.1} {:>9.1}   (measured around each step)\n",
            "all rows",
            "",
            1e3 * self.rows_seconds(),
            100.0 * self.rows_seconds() / step,
            "whole steps",
            self.steps,
            1e3 * self.step_seconds,
            100.0
        );
        out
    }

    /// The same numbers for metrics.json.
    pub fn to_json(&self) -> Value {
        let rows: Vec<Value> = self
            .sorted()
            .iter()
            .map(|r| {
                json!({
                    "phase": r.phase.name(), "op": r.op, "calls": r.calls, "total_ms": 1e3 * r.seconds,
                    "percent_of_step": 100.0 * r.seconds / self.step_seconds.max(f64::MIN_POSITIVE),
                    "gflops_per_second": Profile::gflops(r), "bytes_moved": r.bytes,
                })
            })
            .collect();
        json!({
            "steps": self.steps, "step_ms_total": 1e3 * self.step_seconds,
            "rows_ms_total": 1e3 * self.rows_seconds(), "rows": rows,
        })
    }
}
