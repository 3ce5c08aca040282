//! Max-pooling 2x2 / stride 2 that returns its indices, and the unpooling that uses them.
//!
//! maxpool2d: x (n, c, h, w) -> y (n, c, oh, ow) with oh = floor(h/2), ow = floor(w/2)
//! (an odd last row or column is dropped, as PyTorch's floor mode does), and
//!
//! ```text
//!     y[n][c][oy][ox] = max over the window {2oy, 2oy+1} x {2ox, 2ox+1} of x[n][c]
//!     indices[n][c][oy][ox] = iy*w + ix, the flat position of that maximum in its h*w plane
//! ```
//!
//! Ties: the *first* maximum in row-major window order wins (a strict `>` scan), as in
//! PyTorch; the gradient goes to that element alone.
//!
//! maxunpool2d: x (n, c, oh, ow) with those indices and an explicit output size (H, W)
//! (7x7 from 3x3 needs it: floor(7/2) = 3 too) puts each value back where its maximum was
//! and zeros everywhere else. It is linear, and it is exactly the transpose of the selection
//! the pool made, so the three backward-style maps are one line each, for each pooled
//! cell q of a plane:
//!
//! ```text
//!     pool backward:   dx[indices[q]] += dout[q]          (= the unpool of dout)
//!     unpool forward:  y[indices[q]]   = x[q], 0 elsewhere
//!     unpool backward: dx[q] += dout[indices[q]]          (= the pool's selection of dout)
//! ```
//!
//! Because kernel == stride, windows do not overlap, so the indices of one plane are all
//! distinct: no element is written through two of them, which is what makes the first two
//! race-free (no atomics on a GPU either), and lets `cpu::pool` split the work over (n, c)
//! planes. On the GPU the same four maps are the launchers of `cuda::pool`, and the indices
//! stay there.
//!
//! Example (one 2x3 plane, so ow = 1 and the last column is dropped):
//! ```text
//!     x = [[1, 5, 9],      y = [5], indices = [1];  unpool of [7] to 2x2 gives [[0, 7],
//!          [5, 2, 0]]      (5 appears twice; the first, at position 1, wins)    [0, 0]]
//! ```

use crate::autograd::{Grads, Op, Tape, Var};
use crate::cpu;
use crate::cuda::{self, DRIVER_FAILED, LAUNCH_FAILED};
use crate::geom::POOL;
use crate::ops::Kernels;
use crate::tensor::Tensor;
use cudarc::driver::CudaSlice;
use std::sync::Arc;

/// The argmax positions of a max-pool: one per pooled value, each a flat index into the
/// h*w plane of the pool's input. Shared (`Arc`) between the pool's tape node and the unpool
/// that reuses them.
#[derive(Clone, Debug)]
pub struct Indices {
    /// (n, c, oh, ow): the shape of the pooled tensor.
    pub shape: [usize; 4],
    pub data: IndexData,
}

/// The positions themselves, on the device of the pooled tensor.
#[derive(Clone)]
pub enum IndexData {
    Cpu(Arc<Vec<u32>>),
    Cuda(Arc<CudaSlice<u32>>),
}

impl std::fmt::Debug for IndexData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IndexData::Cpu(v) => write!(f, "Cpu({v:?})"),
            IndexData::Cuda(v) => write!(f, "Cuda({} indices)", v.len()),
        }
    }
}

impl Indices {
    /// Indices on the host, from their values (made elsewhere: a fixture, PyTorch's).
    pub fn from_vec(shape: [usize; 4], data: Vec<u32>) -> Indices {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "indices of shape {shape:?} need as many values");
        Indices { shape, data: IndexData::Cpu(Arc::new(data)) }
    }

    /// A host copy of the positions (a download waits for the GPU).
    pub fn to_vec(&self) -> Vec<u32> {
        match &self.data {
            IndexData::Cpu(v) => v.to_vec(),
            IndexData::Cuda(v) => v.stream().clone_dtoh(&**v).expect(DRIVER_FAILED),
        }
    }

    fn cpu(&self) -> &[u32] {
        match &self.data {
            IndexData::Cpu(v) => v,
            IndexData::Cuda(_) => {
                panic!("pool indices on the GPU used by a CPU op: an op's inputs must all live on one device")
            }
        }
    }

    fn cuda(&self) -> &CudaSlice<u32> {
        match &self.data {
            IndexData::Cuda(v) => v,
            IndexData::Cpu(_) => {
                panic!("pool indices on the CPU used by a GPU op: an op's inputs must all live on one device")
            }
        }
    }
}

/// y (planes, h/2, w/2) = max over each 2x2 window of x (planes, h, w); idx its argmax, the
/// first maximum in row-major window order (strict `>`).
pub fn maxpool2d_forward(x: &[f32], y: &mut [f32], idx: &mut [u32], h: usize, w: usize) {
    let (oh, ow) = (h / POOL, w / POOL);
    assert!(oh > 0 && ow > 0, "maxpool2d needs planes of at least 2x2, got {h}x{w}");
    for p in 0..x.len() / (h * w) {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut at = POOL * oy * w + POOL * ox;
                for dy in 0..POOL {
                    for dx in 0..POOL {
                        let i = (POOL * oy + dy) * w + POOL * ox + dx;
                        if x[p * h * w + i] > x[p * h * w + at] {
                            at = i;
                        }
                    }
                }
                y[(p * oh + oy) * ow + ox] = x[p * h * w + at];
                idx[(p * oh + oy) * ow + ox] = at as u32;
            }
        }
    }
}

/// dx (planes, h, w) += dout (planes, oh, ow) routed to the argmax of each window.
pub fn maxpool2d_backward(dout: &[f32], idx: &[u32], dx: &mut [f32], h: usize, w: usize) {
    let cells = (h / POOL) * (w / POOL);
    for p in 0..dx.len() / (h * w) {
        for q in 0..cells {
            dx[p * h * w + idx[p * cells + q] as usize] += dout[p * cells + q];
        }
    }
}

/// y (planes, h, w) = x (planes, ph, pw) placed at its indices, zero elsewhere.
pub fn maxunpool2d_forward(x: &[f32], idx: &[u32], y: &mut [f32], ph: usize, pw: usize, h: usize, w: usize) {
    y.fill(0.0);
    for p in 0..y.len() / (h * w) {
        for q in 0..ph * pw {
            y[p * h * w + idx[p * ph * pw + q] as usize] = x[p * ph * pw + q];
        }
    }
}

/// dx (planes, ph, pw) += dout (planes, h, w) read at the indices.
pub fn maxunpool2d_backward(dout: &[f32], idx: &[u32], dx: &mut [f32], ph: usize, pw: usize, h: usize, w: usize) {
    for p in 0..dx.len() / (ph * pw) {
        for q in 0..ph * pw {
            dx[p * ph * pw + q] += dout[p * h * w + idx[p * ph * pw + q] as usize];
        }
    }
}

/// Whether index `i` of pooled cell (wy, wx) lies in that cell's window of a plane w wide:
/// cell (wy, wx) owns the POOL x POOL positions from (POOL wy, POOL wx).
pub(crate) fn in_window(wy: usize, wx: usize, i: u32, w: usize) -> bool {
    let offset = (i as usize).wrapping_sub(POOL * wy * w + POOL * wx);
    (0..POOL).any(|dy| (0..POOL).any(|dx| offset == dy * w + dx))
}

/// The gathers need every index inside its own window of an (h, w) plane; indices from
/// `maxpool2d_forward` always are. Anything else is a programming error. Indices on the GPU
/// are not read back for this (every unpool would wait for the GPU); they come from the
/// pool kernel, which the parity tests hold to the CPU's, and the kernels skip a stray one.
fn check_indices(idx: &Indices, h: usize, w: usize, kernels: Kernels) {
    let [_, _, ph, pw] = idx.shape;
    assert!(
        POOL * ph <= h && h < POOL * ph + POOL && POOL * pw <= w && w < POOL * pw + POOL,
        "maxunpool2d: output {h}x{w} cannot come from pooling to {ph}x{pw}"
    );
    let IndexData::Cpu(data) = &idx.data else { return };
    let all_in_windows = match kernels {
        Kernels::Reference => data.iter().enumerate().all(|(q, &i)| in_window(q % (ph * pw) / pw, q % pw, i, w)),
        Kernels::Fast => cpu::pool::all_in_windows(data, ph, pw, w),
    };
    if !all_in_windows {
        let (q, i) = data
            .iter()
            .enumerate()
            .map(|(q, &i)| (q % (ph * pw), i))
            .find(|&(q, i)| !in_window(q / pw, q % pw, i, w))
            .expect("a stray index");
        panic!("maxunpool2d: index {i} lies outside window {q} of a {h}x{w} plane");
    }
}

impl Tape {
    /// 2x2 / stride 2 max-pool of x (n, c, h, w); returns the pooled value and its indices.
    pub fn max_pool2d(&mut self, x: Var) -> (Var, Indices) {
        let xv = self.value(x);
        let &[n, c, h, w] = xv.shape() else { panic!("max_pool2d wants (n, c, h, w), got {:?}", xv.shape()) };
        let shape = [n, c, h / POOL, w / POOL];
        let mut y = Tensor::output_on(&shape, &xv.device());
        let data = match xv {
            Tensor::Cpu(_) => {
                let mut idx = vec![0u32; y.len()];
                match self.kernels() {
                    Kernels::Reference => maxpool2d_forward(xv.as_slice(), y.as_slice_mut(), &mut idx, h, w),
                    Kernels::Fast => cpu::pool::maxpool2d_forward(xv.as_slice(), y.as_slice_mut(), &mut idx, h, w),
                }
                IndexData::Cpu(Arc::new(idx))
            }
            Tensor::Cuda(xc) => {
                let mut idx = xc.gpu().uninit::<u32>(y.len()).expect(DRIVER_FAILED);
                cuda::pool::maxpool2d_forward(xc.gpu(), xc.slice(), y.cuda_mut(), &mut idx, h, w).expect(LAUNCH_FAILED);
                IndexData::Cuda(Arc::new(idx))
            }
        };
        let indices = Indices { shape, data };
        (self.push(y, Op::MaxPool2d { x, indices: indices.clone() }), indices)
    }

    /// The max-pool with its argmax choices given: y = x read at `indices` (a gather, the
    /// unpool's backward). Same values as `max_pool2d` wherever those indices came from
    /// pooling x; used to hold a network's discrete choices fixed (see `models.rs`).
    pub fn max_pool2d_at(&mut self, x: Var, indices: &Indices) -> Var {
        let xv = self.value(x);
        let &[n, c, h, w] = xv.shape() else { panic!("max_pool2d wants (n, c, h, w), got {:?}", xv.shape()) };
        assert_eq!(indices.shape, [n, c, h / POOL, w / POOL], "max_pool2d_at: indices do not fit the input");
        check_indices(indices, h, w, self.kernels());
        let mut y = Tensor::zeros_on(&indices.shape, &xv.device());
        let (ph, pw) = (h / POOL, w / POOL);
        match xv {
            Tensor::Cpu(_) => match self.kernels() {
                Kernels::Reference => {
                    maxunpool2d_backward(xv.as_slice(), indices.cpu(), y.as_slice_mut(), ph, pw, h, w)
                }
                Kernels::Fast => {
                    cpu::pool::maxunpool2d_backward(xv.as_slice(), indices.cpu(), y.as_slice_mut(), ph, pw, h, w)
                }
            },
            Tensor::Cuda(xc) => {
                cuda::pool::maxunpool2d_backward(xc.gpu(), xc.slice(), indices.cuda(), y.cuda_mut(), ph, pw, h, w)
                    .expect(LAUNCH_FAILED)
            }
        }
        self.push(y, Op::MaxPool2d { x, indices: indices.clone() })
    }

    /// Unpools x (n, c, ph, pw) to (n, c, h, w) with the indices of the pool that made it.
    pub fn max_unpool2d(&mut self, x: Var, indices: &Indices, h: usize, w: usize) -> Var {
        let xv = self.value(x);
        assert_eq!(xv.shape(), indices.shape, "max_unpool2d: input and indices differ in shape");
        check_indices(indices, h, w, self.kernels());
        let [n, c, ph, pw] = indices.shape;
        let shape = [n, c, h, w];
        // The unpool writes every value (a gather: the input, or a zero).
        let y = match (xv, self.kernels()) {
            (Tensor::Cpu(_), Kernels::Reference) => {
                let mut y = Tensor::zeros(&shape);
                maxunpool2d_forward(xv.as_slice(), indices.cpu(), y.as_slice_mut(), ph, pw, h, w);
                y
            }
            (Tensor::Cpu(_), Kernels::Fast) => {
                Tensor::from_vec(&shape, cpu::pool::maxunpool2d_forward_new(xv.as_slice(), indices.cpu(), ph, pw, h, w))
            }
            (Tensor::Cuda(xc), _) => {
                let mut y = Tensor::output_on(&shape, &xv.device());
                cuda::pool::maxunpool2d_forward(xc.gpu(), xc.slice(), indices.cuda(), y.cuda_mut(), ph, pw, h, w)
                    .expect(LAUNCH_FAILED);
                y
            }
        };
        self.push(y, Op::MaxUnpool2d { x, indices: indices.clone(), h, w })
    }
}

pub(crate) fn maxpool2d_backward_tape(g: &mut Grads, dout: &Tensor, x: Var, indices: &Indices) {
    let &[_, _, h, w] = g.value(x).shape() else { unreachable!("checked in max_pool2d") };
    match dout {
        Tensor::Cpu(_) => {
            let backward = match g.kernels {
                Kernels::Reference => maxpool2d_backward,
                Kernels::Fast => cpu::pool::maxpool2d_backward,
            };
            if let Some(dx) = g.grad_mut(x) {
                backward(dout.as_slice(), indices.cpu(), dx, h, w);
            }
        }
        Tensor::Cuda(dc) => {
            if let Some(dx) = g.grad_mut_cuda(x) {
                cuda::pool::maxpool2d_backward(dc.gpu(), dc.slice(), indices.cuda(), dx, h, w).expect(LAUNCH_FAILED);
            }
        }
    }
}

pub(crate) fn maxunpool2d_backward_tape(g: &mut Grads, dout: &Tensor, x: Var, indices: &Indices, h: usize, w: usize) {
    let [_, _, ph, pw] = indices.shape;
    match dout {
        Tensor::Cpu(_) => {
            let backward = match g.kernels {
                Kernels::Reference => maxunpool2d_backward,
                Kernels::Fast => cpu::pool::maxunpool2d_backward,
            };
            if let Some(dx) = g.grad_mut(x) {
                backward(dout.as_slice(), indices.cpu(), dx, ph, pw, h, w);
            }
        }
        Tensor::Cuda(dc) => {
            if let Some(dx) = g.grad_mut_cuda(x) {
                cuda::pool::maxunpool2d_backward(dc.gpu(), dc.slice(), indices.cuda(), dx, ph, pw, h, w)
                    .expect(LAUNCH_FAILED);
            }
        }
    }
}
