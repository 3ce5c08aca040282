// Adam: the update of one parameter tensor, one thread per element. The CPU twin is
// `adam_update` in src/optim.rs, whose header gives the algorithm; the host computes the
// bias corrections once per step (in f64, as there) and passes them in:
//
//     m = b1 m + (1 - b1) g
//     v = b2 v + (1 - b2) g^2
//     m, v = 0 where |m|, v < FLT_MIN        (the flush: why, in src/optim.rs)
//     p -= step_size * m / (sqrt(v) / sqrt_bc2 + eps)       step_size = lr / (1 - b1^t)
//                                                           sqrt_bc2  = sqrt(1 - b2^t)
// Elementwise, so each thread owns its p[i], m[i], v[i]: no races.

// Mirrors src/cuda/adam.rs `AdamParams`, field for field.
struct AdamParams {
    unsigned int n;       // elements in the tensor
    float beta1, beta2;
    float step_size;      // lr / (1 - beta1^t)
    float sqrt_bc2;       // sqrt(1 - beta2^t)
    float eps;
};
static_assert(sizeof(AdamParams) == 24, "AdamParams must match its Rust mirror");

// A moment below the normal range (|x| < 1.17549435e-38, FLT_MIN, Rust's f32::MIN_POSITIVE)
// is stored as zero, as `optim::flush` does: a unit that stopped learning would otherwise
// keep a subnormal m for ~60 steps. Written out rather than left to -ftz, so that the rule
// is visible and the same on every floor (NVRTC's default is -ftz=false).
__device__ __forceinline__ float flush(float x) {
    return fabsf(x) < 1.17549435e-38f ? 0.0f : x;
}

extern "C" __global__ void adam_update(float* p, const float* g, float* m, float* v, AdamParams a) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= a.n) return;
    const float mi = flush(a.beta1 * m[i] + (1.0f - a.beta1) * g[i]);
    const float vi = flush(a.beta2 * v[i] + (1.0f - a.beta2) * g[i] * g[i]);
    m[i] = mi;
    v[i] = vi;
    // sqrtf and / are correctly rounded (NVRTC's defaults, -prec-sqrt and -prec-div), as on the CPU.
    p[i] -= a.step_size * mi / (sqrtf(vi) / a.sqrt_bc2 + a.eps);
}
