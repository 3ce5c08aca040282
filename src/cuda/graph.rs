//! CUDA graphs: a training step's few hundred launches recorded once and replayed with one
//! call (`cuStreamBeginCapture`, `cuGraphInstantiate`, `cuGraphLaunch`, through cudarc).
//!
//! Why: the MLP steps are bound by the host's calls into the driver, not by the kernels (an
//! H100 took 248 us a step for h900 and 536 us for the deep AE, mostly launching; issue #16,
//! `benches/gpu_step.rs`). A replay queues the whole recorded step in one call.
//!
//! The switch: `AUTOENCODERS_CUDA_GRAPHS=1` in the environment. A stream can only be
//! captured if it is not the legacy default stream, so with the switch on `Gpu::new` makes
//! its own stream; everything else runs as before. Off (the default), nothing here is used
//! and the GPU path is the tested one.
//!
//! What a replay repeats is exactly what was recorded: the same kernels, the same buffers,
//! the same scalar arguments. So a replayed training step would reuse the recorded step's
//! Adam bias corrections (`AdamParams::step_size`, `sqrt_bc2`, passed by value) and, on the
//! GPU feed, the recorded batch's offset in the epoch's order. Before training can replay
//! steps, those must be read from device memory that the host rewrites before each replay.
//! Until then only `benches/gpu_step.rs --graph` uses this, to measure what a replay saves
//! (the time of a step, not its numbers). NOT YET RUN ON A GPU: written and compiled on a
//! machine without one; `scripts/gpu-check.sh run` runs the bench on the next GPU machine.

use super::{CudaResult, Gpu};
use cudarc::driver::sys::{CUgraphInstantiate_flags, CUstreamCaptureMode};
use cudarc::driver::CudaGraph;

/// The environment variable that turns the capture path on (value `1`).
pub const SWITCH: &str = "AUTOENCODERS_CUDA_GRAPHS";

/// Whether the capture path is switched on.
pub fn requested() -> bool {
    std::env::var(SWITCH).is_ok_and(|v| v == "1")
}

/// Records every launch, copy, allocation and free that `record` queues on the GPU's
/// stream into a graph, instead of running them, and instantiates it for replay. Nothing
/// `record` queues may wait for the device (a download, a synchronise): capture forbids it,
/// and the driver reports the error at the end of the capture. Allocations made inside
/// become the graph's own and are freed at each replay's start (the instantiate flag
/// AUTO_FREE_ON_LAUNCH), so a buffer the recorded step hands out, such as its loss, is only
/// valid until the next replay.
pub fn capture(gpu: &Gpu, record: impl FnOnce()) -> Result<CudaGraph, String> {
    if !requested() {
        return Err(format!("capture needs the GPU's own stream: set {SWITCH}=1 before the GPU is opened"));
    }
    // Thread-local: only this thread's calls are checked against the capture, so rayon's
    // threads (which never touch the GPU) are left alone.
    let mode = CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL;
    gpu.stream.begin_capture(mode).map_err(|e| format!("cannot begin the capture: {e}"))?;
    record();
    let flags = CUgraphInstantiate_flags::CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH;
    match gpu.stream.end_capture(flags) {
        Ok(Some(graph)) => Ok(graph),
        Ok(None) => Err("the capture recorded nothing".to_string()),
        Err(e) => Err(format!("the capture failed (a call that waits for the device, inside it?): {e}")),
    }
}

/// Queues one replay of `graph` on the stream it was captured on.
pub fn replay(graph: &CudaGraph) -> CudaResult<()> {
    graph.launch()
}
