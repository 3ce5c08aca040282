//! A header that lies about its size must not make the reader allocate what it claims.
//! This binary counts the largest single allocation made by the current thread.

mod mnist_files;

use autoencoders::data::read_images;
use mnist_files::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    // `const` initialisation: no lazy set-up, so touching it cannot allocate (and recurse).
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LARGEST.try_with(|m| m.set(m.get().max(layout.size())));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = LARGEST.try_with(|m| m.set(m.get().max(new_size)));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn lying_headers_do_not_allocate_what_they_claim() {
    let d = tempfile::tempdir().unwrap();
    // 1,000,000 x 28 x 28 = 784 MB claimed, 100 bytes present; and just under the 1 GiB cap.
    for dims in [[1_000_000u32, 28, 28], [1023, 1024, 1024]] {
        let f = idx(0x08, &dims, &[0; 100]);
        for (name, bytes) in [("big", f.clone()), ("big.gz", gzip(&f))] {
            let p = write(d.path(), name, &bytes);
            LARGEST.with(|m| m.set(0));
            assert!(read_images(&p).is_err());
            let largest = LARGEST.with(|m| m.get());
            assert!(largest < 1 << 20, "{name} {dims:?}: allocated {largest} bytes at once");
        }
    }
}
