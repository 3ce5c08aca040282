//! Keeping freed memory for the next step, and the memory a run needs.
//!
//! A training step allocates and frees the same few dozen buffers every time (activations,
//! gradients, im2col columns, Adam's temporaries), from 100 KB to a few MB. glibc's malloc
//! serves blocks that large with a fresh `mmap` and returns them with `munmap` on free, so
//! every step paid for page faults on first touch and for the cross-core TLB flushes that
//! `munmap` sends to the other threads: perf put half of the deep AE's step in the kernel,
//! and the step took 20 ms against 9 ms once those blocks stayed in the heap. Raising the
//! mmap threshold to its ceiling (32 MiB on 64-bit glibc) and the trim threshold keeps them
//! there, where the next step finds them. Peak memory is unchanged: the same blocks are
//! reused rather than returned and fetched again.
//!
//! `training_bytes` counts what a model's training holds, so that a run asking for more
//! than the machine has (`--size 100000`: 40 GB of weights) is refused in one line before
//! anything is allocated, instead of aborting in the allocator.

use crate::models::{Arch, Layer, PIXELS, SIDE};
use std::sync::Once;

/// Sets the allocator up for repeated steps; the training loop, the command line and the
/// benches call it, and calling it again does nothing. A no-op off glibc.
pub fn keep_freed_memory() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes malloc's tuning parameters, and is thread-safe.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        }
    });
}

/// Hands the heap's free memory back to the kernel. What `keep_freed_memory` keeps for the
/// next training step is, once training is over, resident memory that nothing uses: `probe`
/// frees a model's codes, reconstructions and images (up to 32 MB each, so from the heap)
/// and calls this before the next model's, which need not fit into the same blocks. Its
/// peak over an `all` run's models fell from 628 MB to about 590 (sampled). A no-op off glibc.
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory at the heap's top and free pages inside
    // it; it is thread-safe and touches no allocated block.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The bytes that training a model of `arch` on batches of `batch` images holds at least:
/// each parameter four times (the weights, their gradient, Adam's two moments), and per
/// image of the batch its pixels three times (the batch buffer, the target and the input)
/// and every layer's output twice (the value the tape keeps and its gradient). Widened to
/// u128: the command line can ask for products far past u64.
pub fn training_bytes(arch: Arch, batch: usize) -> u128 {
    let (encoder, decoder) = arch.layers();
    let (mut params, mut per_image) = (0u128, 3 * PIXELS as u128);
    // The activation's shape (c, h, w), and the pools' inputs for the unpools to restore.
    let (mut shape, mut pools) = ((1usize, 1usize, PIXELS), Vec::new());
    for layer in encoder.iter().chain(&decoder) {
        let (c, h, w) = shape;
        shape = match *layer {
            Layer::Linear { d_in, d_out } => {
                params += (d_in as u128 + 1) * d_out as u128;
                (1, 1, d_out)
            }
            Layer::Conv2d { c_in, c_out, k, stride, padding } => {
                params += (c_in * k * k + 1) as u128 * c_out as u128;
                let out = |x: usize| (x + 2 * padding).saturating_sub(k) / stride + 1;
                (c_out, out(h), out(w))
            }
            Layer::ConvTranspose2d { c_in, c_out, k, stride, padding } => {
                params += (c_out * k * k + 1) as u128 * c_in as u128;
                let out = |x: usize| (x.saturating_sub(1) * stride + k).saturating_sub(2 * padding);
                (c_out, out(h), out(w))
            }
            Layer::MaxPool2d => {
                pools.push((h, w));
                (c, h / 2, w / 2)
            }
            Layer::MaxUnpool2d => {
                let (ph, pw) = pools.pop().unwrap_or((2 * h, 2 * w));
                (c, ph, pw)
            }
            Layer::ToImage => (1, SIDE, SIDE),
            Layer::Relu | Layer::Flatten => shape,
        };
        per_image += 2 * (shape.0 * shape.1 * shape.2) as u128;
    }
    F32 * (4 * params + batch as u128 * per_image)
}

const F32: u128 = std::mem::size_of::<f32>() as u128;

/// The memory this process may still take: `MemAvailable` of /proc/meminfo (what the kernel
/// can hand out without swapping), else `MemTotal`; `None` where there is no /proc/meminfo.
pub fn available_bytes() -> Option<(&'static str, u128)> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |key: &str| -> Option<u128> {
        let line = text.lines().find(|l| l.starts_with(key))?;
        let kb: u128 = line[key.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    };
    field("MemAvailable:").map(|b| ("available", b)).or_else(|| field("MemTotal:").map(|b| ("in all", b)))
}

/// Bytes for a person: 3.1 TB, 40.2 GB, 512 MB.
pub fn human(bytes: u128) -> String {
    let b = bytes as f64;
    match b {
        b if b >= 1e12 => format!("{:.1} TB", b / 1e12),
        b if b >= 1e9 => format!("{:.1} GB", b / 1e9),
        _ => format!("{:.0} MB", b / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counted by hand: h = 8 has 784*8+8 + 8*8+8 + 8*784+784 = 13,400 parameters; an image
    /// holds 3*784 pixels and 2*(8+8+8+8+784+784) outputs (the four layers and their ReLUs).
    #[test]
    fn training_bytes_counts_parameters_and_activations() {
        let params = 784 * 8 + 8 + 8 * 8 + 8 + 8 * 784 + 784;
        let per_image = 3 * 784 + 2 * (8 + 8 + 8 + 8 + 784 + 784);
        assert_eq!(training_bytes(Arch::Shallow { hidden: 8 }, 10), 4 * (4 * params + 10 * per_image));
        // The CAE's activations come back to 28x28 through the unpools.
        let cae = training_bytes(Arch::CaeUnpool, 1) - training_bytes(Arch::CaeUnpool, 0);
        assert!(cae > 4 * 2 * (8 * 28 * 28 + 784), "{cae}");
    }
}
