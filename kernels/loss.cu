// Losses: the mean squared error and the mean absolute value (the L1 penalty).
// The CPU twin is src/ops/loss.rs.
//
//     mse_forward:      out = (1/N) sum_i (x[i] - t[i])^2       mse_backward:      d[i] += scale (x[i] - t[i])
//     mean_abs_forward: out = (1/N) sum_i |x[i]|                mean_abs_backward: dx[i] += scale sign(x[i]), sign(0) = 0
//
// scale is 2 dout / N for x and -2 dout / N for t; dout / N for mean_abs, as on the CPU.
// The backwards read dout, the loss's own one-element gradient, from device memory and form
// scale = (factor * dout) / N themselves, in the CPU's order of operations (factor = +-2 or
// 1): in training that gradient is computed on the GPU, and passing it by value would make
// the host wait for the step to reach the loss before it could queue the rest of backward.
//
// The forward sums are reductions, done in two passes:
//   1. `*_forward_partials`: a fixed grid of LOSS_BLOCKS blocks; each thread sums a fixed
//      grid-stride subset of the elements, then each block adds its threads' sums in a
//      fixed tree and writes one partial sum;
//   2. `mean_of_partials`: a single block adds the partials in a fixed tree and divides by N.
// Why not atomicAdd into one number: floating-point addition is not associative, and the
// order in which atomics land changes from run to run, so the loss would change in its last
// bits between two runs of the same seed. With every grouping fixed (the grid size is a
// constant, not the device's SM count) the result has the same bits on every run and every
// GPU. Sums are in f64, as on the CPU, so the 50,000-pixel batches lose nothing.

// Blocks of pass 1 and threads of every block here; powers of two for the trees.
#define LOSS_BLOCKS 256
#define LOSS_THREADS 256

// Adds the block's LOSS_THREADS values in `sums` in a fixed tree; the total ends in sums[0].
__device__ void block_sum(double* sums) {
    __syncthreads();
    for (unsigned int half = LOSS_THREADS / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) sums[threadIdx.x] += sums[threadIdx.x + half];
        __syncthreads();
    }
}

extern "C" __global__ void mse_forward_partials(const float* x, const float* t, double* partials, unsigned int n) {
    __shared__ double sums[LOSS_THREADS];
    double s = 0.0;
    for (size_t i = (size_t)blockIdx.x * LOSS_THREADS + threadIdx.x; i < n; i += (size_t)LOSS_BLOCKS * LOSS_THREADS) {
        // The difference in f32, its square in f64: what the CPU computes.
        const double d = (double)(x[i] - t[i]);
        s += d * d;
    }
    sums[threadIdx.x] = s;
    block_sum(sums);
    if (threadIdx.x == 0) partials[blockIdx.x] = sums[0];
}

extern "C" __global__ void mean_abs_forward_partials(const float* x, double* partials, unsigned int n) {
    __shared__ double sums[LOSS_THREADS];
    double s = 0.0;
    for (size_t i = (size_t)blockIdx.x * LOSS_THREADS + threadIdx.x; i < n; i += (size_t)LOSS_BLOCKS * LOSS_THREADS) {
        s += fabs((double)x[i]);
    }
    sums[threadIdx.x] = s;
    block_sum(sums);
    if (threadIdx.x == 0) partials[blockIdx.x] = sums[0];
}

// Launched as one block: out[0] = (sum of the LOSS_BLOCKS partials) / n.
extern "C" __global__ void mean_of_partials(const double* partials, float* out, unsigned int n) {
    __shared__ double sums[LOSS_THREADS];
    double s = 0.0;
    for (unsigned int b = threadIdx.x; b < LOSS_BLOCKS; b += LOSS_THREADS) s += partials[b];
    sums[threadIdx.x] = s;
    block_sum(sums);
    if (threadIdx.x == 0) out[0] = (float)(sums[0] / (double)n);
}

extern "C" __global__ void mse_backward(const float* x, const float* t, const float* dout, float factor, float* d, unsigned int n) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float scale = factor * dout[0] / (float)n;
    d[i] += scale * (x[i] - t[i]);
}

extern "C" __global__ void mean_abs_backward(const float* x, const float* dout, float* dx, unsigned int n) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float scale = dout[0] / (float)n;
    // The subgradient at the kink is 0: x == 0 adds nothing.
    if (x[i] != 0.0f) dx[i] += scale * copysignf(1.0f, x[i]);
}
