// The convolution kernels: im2col, its adjoint col2im, the bias, and the batch sums.
// The CPU twins are src/ops/im2col.rs and src/ops/conv.rs; conv2d and conv_transpose2d
// themselves are compositions of these with gemm (src/cuda/conv.rs), as on the CPU.
//
// Geometry (ConvParams): n images of c x h x w, a kh x kw kernel, stride s, zero padding
// p, output oh x ow. With K = c*kh*kw rows and P = oh*ow columns per image:
//
//     im2col:  col[img][(ci*kh + ki)*kw + kj][oy*ow + ox] = x[img][ci][oy*s - p + ki][ox*s - p + kj]
//              (0 where the tap falls off the image)            col: (n, K, P), x: (n, c, h, w)
//     col2im:  x[img][ci][iy][ix] += sum of the col entries that im2col copied from there
//
// The CPU col2im scatters: it walks the col entries and adds each onto its pixel, which is
// race-free there because one thread owns one image. Here one thread owns one *pixel* and
// gathers instead: tap (ki, kj) reaches pixel (iy, ix) from output row oy = (iy + p - ki)/s
// when that division is exact and 0 <= oy < oh (likewise for columns). Same sums, same
// order of addition (ki, then kj), no atomics.
//
//     fill_bias:          y[img][co][q] = b[co]                 y: (n, c_out, plane)
//     conv_backward_bias: db[co] += sum over img, q of dout[img][co][q]
//     sum_over_batch:     dw[j] += sum over img of part[img][j]  (a weight gradient's batch sum)
//
// linear uses fill_bias and conv_backward_bias too, with plane = 1: y (n, d_out) is n
// "images" of d_out channels of one pixel each.

// Mirrors src/cuda/conv.rs `ConvParams` (the CPU `ConvGeom` plus the batch size n).
struct ConvParams {
    unsigned int n, c, h, w;      // n images of c x h x w
    unsigned int kh, kw;          // kernel
    unsigned int stride, padding;
    unsigned int oh, ow;          // output size
};
static_assert(sizeof(ConvParams) == 40, "ConvParams must match its Rust mirror");

// One thread per col entry: (img, row, q) with row = (ci, ki, kj) and q = (oy, ox).
extern "C" __global__ void im2col(const float* x, float* col, ConvParams g) {
    const unsigned int rows = g.c * g.kh * g.kw, cols = g.oh * g.ow;
    const size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)g.n * rows * cols) return;
    const unsigned int q = e % cols, row = (e / cols) % rows, img = e / ((size_t)cols * rows);
    const unsigned int kj = row % g.kw, ki = (row / g.kw) % g.kh, ci = row / (g.kw * g.kh);
    const unsigned int oy = q / g.ow, ox = q % g.ow;
    // Signed: a tap in the padding lands at a negative coordinate.
    const int iy = (int)(oy * g.stride + ki) - (int)g.padding;
    const int ix = (int)(ox * g.stride + kj) - (int)g.padding;
    const bool on_image = iy >= 0 && iy < (int)g.h && ix >= 0 && ix < (int)g.w;
    col[e] = on_image ? x[(((size_t)img * g.c + ci) * g.h + iy) * g.w + ix] : 0.0f;
}

// One thread per image pixel (img, ci, iy, ix), gathering the taps that copied it.
extern "C" __global__ void col2im(const float* col, float* x, ConvParams g) {
    const unsigned int rows = g.c * g.kh * g.kw, cols = g.oh * g.ow;
    const size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)g.n * g.c * g.h * g.w) return;
    const unsigned int ix = e % g.w, iy = (e / g.w) % g.h, ci = (e / ((size_t)g.w * g.h)) % g.c;
    const unsigned int img = e / ((size_t)g.w * g.h * g.c);
    const float* col_img = col + (size_t)img * rows * cols;
    float acc = x[e];
    for (unsigned int ki = 0; ki < g.kh; ki++) {
        const int ty = (int)(iy + g.padding) - (int)ki;  // = oy * stride, if this tap reaches
        if (ty < 0 || ty % g.stride != 0 || ty / g.stride >= g.oh) continue;
        const unsigned int oy = ty / g.stride;
        for (unsigned int kj = 0; kj < g.kw; kj++) {
            const int tx = (int)(ix + g.padding) - (int)kj;
            if (tx < 0 || tx % g.stride != 0 || tx / g.stride >= g.ow) continue;
            const unsigned int ox = tx / g.stride;
            acc += col_img[(size_t)((ci * g.kh + ki) * g.kw + kj) * cols + oy * g.ow + ox];
        }
    }
    x[e] = acc;
}

// One thread per output element of y (n, c, plane).
extern "C" __global__ void fill_bias(float* y, const float* b, unsigned int n, unsigned int c, unsigned int plane) {
    const size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)n * c * plane) return;
    y[e] = b[(e / plane) % c];
}

// The most threads per block of conv_backward_bias.
#define BIAS_THREADS 1024

// One block per channel co, of T threads (a power of two from 32 to 1024, chosen by the
// host from the channel's size: n values for a linear layer, n x 784 for the CAEs' last).
// Thread t sums the elements t, t + T, ... of that channel in f64 (as the CPU does), then
// the block adds its T sums in a fixed tree. A fixed order for a given shape, so the same
// bits on every run; a block owns its channel, so no atomics. The loop is bound by the
// loads' latency, so it is unrolled to keep several of them in flight.
extern "C" __global__ void conv_backward_bias(const float* dout, float* db, unsigned int n, unsigned int c, unsigned int plane) {
    __shared__ double sums[BIAS_THREADS];
    const unsigned int co = blockIdx.x, threads = blockDim.x;
    double s = 0.0;
#pragma unroll 4
    for (size_t e = threadIdx.x; e < (size_t)n * plane; e += threads) {
        const size_t img = e / plane, q = e % plane;
        s += (double)dout[(img * c + co) * plane + q];
    }
    sums[threadIdx.x] = s;
    __syncthreads();
    for (unsigned int half = threads / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) sums[threadIdx.x] += sums[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) db[co] += (float)sums[0];
}

// One thread per weight-gradient element j, adding the images' partials in image order.
extern "C" __global__ void sum_over_batch(const float* part, float* dw, unsigned int n, unsigned int len) {
    const unsigned int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= len) return;
    float s = 0.0f;
    for (unsigned int img = 0; img < n; img++) s += part[(size_t)img * len + j];
    dw[j] += s;
}
