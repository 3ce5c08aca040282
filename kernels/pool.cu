// Max-pooling 2x2 / stride 2 with indices, and the unpooling that uses them.
// The CPU twin is src/ops/pool.rs (its header gives the mathematics and an example).
//
//     maxpool2d_forward:    y[q] = max of window q of x,  idx[q] = its flat position in the h*w plane
//     maxpool2d_backward:   dx[idx[q]] += dout[q]
//     maxunpool2d_forward:  y[idx[q]] = x[q], 0 elsewhere
//     maxunpool2d_backward: dx[q] += dout[idx[q]]
//
// Shapes (PoolParams): planes = n*c planes; the full planes are h x w, the pooled ones
// ph x pw with ph = h/2, pw = w/2 (floor: an odd last row or column belongs to no window).
//
// Ties: the *first* maximum in row-major window order wins (strict >), as in PyTorch and
// on the CPU.
//
// Kernel == stride, so windows do not overlap: each position of a plane lies in at most
// one window, and the index that window chose either is that position or is not. That
// turns the two maps that write through the indices into gathers: one thread per
// position of the full plane asks its window "did you pick me?". Every thread owns the one
// value it writes; no atomics. (The gathers assume every index lies in its own window,
// which indices from maxpool2d_forward always do; the CPU tape checks it for given ones.)

// Pooling kernel and stride, as `K` in src/ops/pool.rs.
#define K 2

// Mirrors src/cuda/pool.rs `PoolParams`, field for field.
struct PoolParams {
    unsigned int planes;  // n * c
    unsigned int h, w;    // the full (unpooled) plane
    unsigned int ph, pw;  // the pooled plane: h / K, w / K
};
static_assert(sizeof(PoolParams) == 20, "PoolParams must match its Rust mirror");

// The pooled cell whose window holds position pos of an h x w plane, or -1 if pos lies in
// the dropped odd row or column: the cell (wy, wx) for which `in_window` (src/ops/pool.rs)
// holds, found by division since a thread starts from its position.
__device__ int cell(unsigned int pos, PoolParams p) {
    const unsigned int wy = pos / p.w / K, wx = pos % p.w / K;
    return (wy < p.ph && wx < p.pw) ? (int)(wy * p.pw + wx) : -1;
}

// One thread per pooled cell (plane, oy, ox).
extern "C" __global__ void maxpool2d_forward(const float* x, float* y, unsigned int* idx, PoolParams p) {
    const size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)p.planes * p.ph * p.pw) return;
    const unsigned int q = e % (p.ph * p.pw), plane = e / (p.ph * p.pw);
    const unsigned int oy = q / p.pw, ox = q % p.pw;
    const float* xp = x + (size_t)plane * p.h * p.w;
    unsigned int best = (K * oy) * p.w + K * ox;
    for (unsigned int dy = 0; dy < K; dy++)
        for (unsigned int dx = 0; dx < K; dx++) {
            const unsigned int pos = (K * oy + dy) * p.w + K * ox + dx;
            if (xp[pos] > xp[best]) best = pos;  // strict: the first maximum stays
        }
    y[e] = xp[best];
    idx[e] = best;
}

// One thread per input position (plane, pos): a gather of its window's gradient.
extern "C" __global__ void maxpool2d_backward(const float* dout, const unsigned int* idx, float* dx, PoolParams p) {
    const size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)p.planes * p.h * p.w) return;
    const unsigned int pos = e % (p.h * p.w);
    const size_t q0 = e / (p.h * p.w) * (size_t)(p.ph * p.pw);  // this plane's first cell
    const int c = cell(pos, p);
    if (c >= 0 && idx[q0 + c] == pos) dx[e] += dout[q0 + c];
}

// One thread per output position (plane, pos): its window's value if it was the argmax.
extern "C" __global__ void maxunpool2d_forward(const float* x, const unsigned int* idx, float* y, PoolParams p) {
    const size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)p.planes * p.h * p.w) return;
    const unsigned int pos = e % (p.h * p.w);
    const size_t q0 = e / (p.h * p.w) * (size_t)(p.ph * p.pw);
    const int c = cell(pos, p);
    y[e] = (c >= 0 && idx[q0 + c] == pos) ? x[q0 + c] : 0.0f;
}

// One thread per pooled cell (plane, q): read dout where that cell's maximum was.
extern "C" __global__ void maxunpool2d_backward(const float* dout, const unsigned int* idx, float* dx, PoolParams p) {
    const size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)p.planes * p.ph * p.pw) return;
    const size_t plane = e / (p.ph * p.pw);
    // An index past its plane would read the next plane's memory; the CPU would panic on
    // it, so here it adds nothing (indices from maxpool2d_forward never are).
    if (idx[e] < p.h * p.w) dx[e] += dout[plane * p.h * p.w + idx[e]];
}
