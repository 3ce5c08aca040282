//! Keeping freed memory for the next step.
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
