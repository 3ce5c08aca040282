//! Fails its run when training slows down as it goes: each model trains EPOCHS whole epochs
//! (default 3) and the bench exits non-zero if any model's last epoch took more than 10%
//! longer than its second.
//!
//!     cargo bench --bench drift -- [MODEL ...] [--epochs E]        # default: every model
//!
//! The second epoch, not the first, is the yardstick: the first also pays for warming the
//! allocator and the caches. A slowdown that grows with training is what subnormal floats
//! did before Adam flushed them (issue #16; src/optim.rs): later epochs took 1.5-2x the
//! first on an Intel Xeon. A bench, not a test: it measures time, and a shared, noisy
//! machine can fail it without cause, so rerun before believing one failure.

mod steady;

/// How much slower than the second epoch the last may be.
const SLACK: f64 = 1.10;

fn main() {
    let args = steady::args();
    let mut epochs = 3;
    let mut models = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--epochs" {
            epochs = args.get(i + 1).and_then(|s| s.parse().ok()).filter(|&e| e >= 3).unwrap_or_else(|| {
                eprintln!("error: --epochs takes a count of at least 3 (the last must come after the second)");
                std::process::exit(2)
            });
            i += 2;
        } else {
            models.push(args[i].clone());
            i += 1;
        }
    }
    if models.is_empty() {
        models = steady::MODELS.iter().map(|m| m.to_string()).collect();
    }
    let mut slower = Vec::new();
    for name in &models {
        let run = steady::train_epochs(name, epochs, None).unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(2)
        });
        let ratio = run.last_over(2);
        let seconds: Vec<String> = run.epoch_seconds.iter().map(|s| format!("{s:.2}")).collect();
        println!("{name}: epochs {} s; last / second {ratio:.3}", seconds.join(", "));
        if ratio > SLACK {
            slower.push(format!("{name} ({ratio:.2}x)"));
        }
    }
    if !slower.is_empty() {
        eprintln!("error: the last epoch took more than {SLACK}x the second: {}", slower.join(", "));
        std::process::exit(1);
    }
    println!("every model's last epoch within {SLACK}x of its second ({} threads)", rayon::current_num_threads());
}
