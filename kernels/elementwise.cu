// Elementwise kernels: one thread per element, each the body of a CPU loop.
//
//     relu_forward:   y[i] = max(x[i], 0)                          src/ops/relu.rs
//     relu_backward:  dx[i] += dout[i] where y[i] > 0              (subgradient 0 at the kink)
//     add:            y[i] = a[i] + b[i]                           src/ops/shape.rs
//     scale:          y[i] = factor * x[i]
//     add_into:       d[i] += factor * dout[i]                     (reshape/add/scale backward)
//
// Shapes do not matter here: every tensor is a flat run of n floats in row-major order.
// Each thread owns the one element it writes, so there are no races and no atomics.

extern "C" __global__ void relu_forward(const float* x, float* y, unsigned int n) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    // fmaxf(NaN, 0) is 0, like Rust's f32::max on the CPU side.
    y[i] = fmaxf(x[i], 0.0f);
}

extern "C" __global__ void relu_backward(const float* y, const float* dout, float* dx, unsigned int n) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    // y > 0 exactly where x > 0, so the saved output stands in for the input.
    if (y[i] > 0.0f) dx[i] += dout[i];
}

extern "C" __global__ void add(const float* a, const float* b, float* y, unsigned int n) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    y[i] = a[i] + b[i];
}

extern "C" __global__ void scale(const float* x, float factor, float* y, unsigned int n) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    y[i] = x[i] * factor;
}

extern "C" __global__ void add_into(float* d, const float* dout, float factor, unsigned int n) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    d[i] += factor * dout[i];
}
