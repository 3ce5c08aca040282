//! Whole training epochs of one model of the study, timed through the loop `train` runs:
//!
//!     cargo bench --bench step -- MODEL [EPOCHS] [--steps N]     # e.g. ae 3; h64 3 --steps 300
//!
//! MODEL is a name of `torch_ref.py`: ae, h64, h128, h256, h900, sparse-L, denoise-S,
//! manifold, cae-unpool, cae-deconv, cae-deconv-unpool. EPOCHS defaults to 3; `--steps N`
//! trains on the first N * 64 images only (quick looks: the steady state needs whole
//! epochs, see benches/steady). Prints one JSON line: each epoch's seconds, the median from
//! epoch 2 on (`median_epoch_s`, and per step), the last epoch over the first and over the
//! second, peak RSS, and for the MLPs two rates of the linear layers' products over the
//! epochs from 2 on: `gflops`, the arithmetic they did (`cpu::linear::multiply_adds`), and
//! `dense_gflops`, the flops of the whole products the steps stand for, as PyTorch computes
//! them. `scripts/compare_torch.py` runs this beside PyTorch.

mod steady;

fn main() {
    let args = steady::args();
    let steps = args.iter().position(|a| a == "--steps").map(|i| {
        args.get(i + 1).and_then(|s| s.parse::<usize>().ok()).unwrap_or_else(|| exit("--steps takes a count"))
    });
    let positional: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|&(i, a)| !a.starts_with("--") && (i == 0 || args[i - 1] != "--steps"))
        .map(|(_, a)| a)
        .collect();
    let name = positional.first().map(|s| s.as_str()).unwrap_or("ae");
    let epochs: usize = match positional.get(1) {
        Some(e) => e.parse().ok().filter(|&e| e > 0).unwrap_or_else(|| exit("EPOCHS is a positive count")),
        None => 3,
    };
    let run = steady::train_epochs(name, epochs, steps).unwrap_or_else(|e| exit(&e));
    let median = run.median_epoch();
    // The products' rates over the median epoch: the counter covers the whole run, and every
    // epoch does the same dense work, but the arithmetic done varies a little with the
    // units alive, so it is averaged over the run.
    let done_per_epoch = 2.0 * run.multiply_adds as f64 / epochs as f64;
    let dense_per_epoch = 2.0 * (run.dense_multiply_adds * run.steps_per_epoch) as f64;
    let rate = |flops: f64| if run.is_mlp() { format!("{:.2}", flops / median / 1e9) } else { "null".to_string() };
    let seconds: Vec<String> = run.epoch_seconds.iter().map(|s| format!("{s:.3}")).collect();
    println!(
        "{{\"model\": \"{name}\", \"epochs\": {epochs}, \"steps_per_epoch\": {}, \"threads\": {}, \"epoch_seconds\": [{}], \
         \"median_epoch_s\": {median:.3}, \"ms_per_step\": {:.4}, \"last_over_first\": {:.3}, \"last_over_second\": {}, \
         \"peak_rss_mb\": {}, \"gflops\": {}, \"dense_gflops\": {}}}",
        run.steps_per_epoch,
        rayon::current_num_threads(),
        seconds.join(", "),
        1e3 * median / run.steps_per_epoch as f64,
        run.last_over(1),
        if epochs >= 2 { format!("{:.3}", run.last_over(2)) } else { "null".to_string() },
        steady::peak_rss_mb().map_or("null".to_string(), |mb| format!("{mb:.0}")),
        rate(done_per_epoch),
        rate(dense_per_epoch),
    );
}

fn exit(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(2)
}
