//! The training set on the GPU, and the losses of an epoch's steps: kernels/data.cu.
//!
//! `DeviceImages` holds the images as they come, one byte a pixel, uploaded once when
//! training starts; `batch_into` gathers a batch of them by row number and scales it to
//! [0, 1], as `Images::batch_into` does on the host. The row numbers are the epoch's shuffled
//! order, uploaded once per epoch; a step reads its batch as a window of it.
//!
//! `StepLosses` keeps each step's loss on the device (a one-value copy queued behind the
//! step), so the host can queue step after step without waiting for any of them, and reads
//! the losses back in one download when it logs.

use super::{grid_1d, launch, to_u32, CudaResult, Gpu};
use crate::data::Images;
use cudarc::driver::{CudaSlice, CudaView, PushKernelArg};
use std::ops::Range;

/// A set of images on the device, one byte a pixel, image after image.
pub struct DeviceImages {
    pub pixels: CudaSlice<u8>,
    pub n: usize,
    /// Pixels per image.
    pub d: usize,
}

impl DeviceImages {
    pub fn upload(gpu: &Gpu, images: &Images) -> CudaResult<DeviceImages> {
        let d = images.image_len();
        Ok(DeviceImages { pixels: gpu.upload(&images.pixels[..images.n * d])?, n: images.n, d })
    }
}

/// out (rows.len(), d) = the images numbered `rows` scaled to [0, 1]. Every row number must
/// be below the number of images (they come from a shuffle of 0..n; the device cannot be
/// asked cheaply, so the caller's order is trusted).
pub fn batch_into(gpu: &Gpu, images: &DeviceImages, rows: &CudaView<u32>, out: &mut CudaSlice<f32>) -> CudaResult<()> {
    let (n, d) = (rows.len(), images.d);
    assert_eq!(out.len(), n * d, "batch_into: out has {} floats, want {n} x {d}", out.len());
    let (n32, d32) = (to_u32(n), to_u32(d));
    // SAFETY: arguments as in the C signature; rows holds n numbers below images.n, out
    // n*d floats, pixels images.n*d bytes. One thread per output value.
    unsafe {
        launch(gpu, &gpu.k.batch_into, grid_1d(n * d), |args| {
            args.arg(&images.pixels); // const unsigned char* pixels
            args.arg(rows); //           const unsigned int* rows
            args.arg(out); //            float* out
            args.arg(&n32); //           unsigned int n
            args.arg(&d32); //           unsigned int d
        })
    }
}

/// The losses of one epoch's steps, on the device until read.
pub struct StepLosses {
    buf: CudaSlice<f32>,
}

impl StepLosses {
    pub fn new(gpu: &Gpu, steps: usize) -> CudaResult<StepLosses> {
        Ok(StepLosses { buf: gpu.zeros(steps)? })
    }

    /// `losses[step] = loss[0]`, queued behind the step that computes it.
    pub fn record(&mut self, gpu: &Gpu, step: usize, loss: &CudaSlice<f32>) -> CudaResult<()> {
        assert_eq!(loss.len(), 1, "a loss is one value");
        gpu.stream.memcpy_dtod(loss, &mut self.buf.slice_mut(step..step + 1))
    }

    /// The losses of `steps`; waits until those steps have run.
    pub fn read(&self, gpu: &Gpu, steps: Range<usize>) -> CudaResult<Vec<f32>> {
        gpu.stream.clone_dtoh(&self.buf.slice(steps))
    }
}
