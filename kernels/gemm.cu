// gemm: C = A B + beta C, the matrix product that carries almost all the arithmetic.
// The CPU twin is src/ops/gemm.rs; the views are the same: element (i, l) of A is
// a[i * a_rs + l * a_cs], so a transpose is the same buffer with its strides swapped.
//
//     A (m x k), B (k x n), C (m x n, row-major, row stride n)
//     C[i][j] = sum_l A(i, l) B(l, j) + beta C[i][j]      beta = 0 (overwrite) or 1 (accumulate)
//
// Batched: blockIdx.z picks product z, whose operands start at a + z*a_bs, b + z*b_bs and
// c + z*c_bs. A batch stride of 0 shares that operand (one weight for every image of a
// convolution); batch = 1 is the plain product.
//
// Split k: a product with few tiles (64 x 784 from a batch of 64, say: 13 blocks for a GPU
// of 132 multiprocessors) would leave most of the GPU idle while each block walks all of k.
// Then the host asks for `splits` slices of k, k_split long (whole slabs): block z of the
// grid computes slice z % splits of product z / splits into its own partial product (c
// points to a scratch buffer of count x splits partials, beta = 0), and gemm_sum_splits
// adds each output's partials in slice order, then beta C: a fixed order, so the same bits
// on every run, and no atomics. splits = 1 is the plain product, written into C directly.
//
// Tiling: each block computes a TILE_M x TILE_N tile of C. It walks k in steps of TILE_K,
// copying a TILE_M x TILE_K slab of A and a TILE_K x TILE_N slab of B into shared memory
// (each element read from global memory once per block instead of once per thread), then
// each of the 16 x 16 threads multiplies a THREAD_M x THREAD_N block of C out of them,
// holding its 16 sums in registers. Thread (tx, ty) owns rows ty + 16r and columns
// tx + 16c: interleaved, so neighbouring threads write neighbouring columns (coalesced) and
// read neighbouring shared-memory words (no bank conflicts). Elements past the edges of A
// or B are loaded as 0, which adds nothing; outputs past the edges of C are not written.

#define TILE_M 64
#define TILE_N 64
#define TILE_K 16
#define THREAD_M 4   // TILE_M / 16
#define THREAD_N 4   // TILE_N / 16
#define THREADS 256  // 16 x 16

// Mirrors src/cuda/gemm.rs `GemmParams`, field for field.
struct GemmParams {
    unsigned int m, n, k;       // C is m x n; A is m x k; B is k x n
    unsigned int a_rs, a_cs;    // A(i, l) = a[i * a_rs + l * a_cs]
    unsigned int b_rs, b_cs;    // B(l, j) = b[l * b_rs + j * b_cs]
    unsigned int a_bs, b_bs, c_bs; // batch strides (0: the operand is shared)
    unsigned int splits, k_split;  // slices of k per product, and their length
    float beta;                 // 0 or 1
};
static_assert(sizeof(GemmParams) == 52, "GemmParams must match its Rust mirror");

extern "C" __global__ void gemm(const float* a, const float* b, float* c, GemmParams p) {
    // A's slab is stored transposed, as_t[l][i], so the inner loop reads both slabs along
    // their rows. The +1 column of padding: when a slab is copied down its columns
    // (consecutive threads, consecutive l), a row length of 65 words puts those stores in
    // different banks instead of all in one.
    __shared__ float as_t[TILE_K][TILE_M + 1];
    __shared__ float bs[TILE_K][TILE_N + 1];

    const unsigned int product = blockIdx.z / p.splits, slice = blockIdx.z % p.splits;
    const unsigned int l_begin = slice * p.k_split, l_end = min(p.k, l_begin + p.k_split);
    a += (size_t)product * p.a_bs;
    b += (size_t)product * p.b_bs;
    c += (size_t)blockIdx.z * p.c_bs;
    const unsigned int row0 = blockIdx.y * TILE_M, col0 = blockIdx.x * TILE_N;
    const unsigned int tx = threadIdx.x % 16, ty = threadIdx.x / 16;

    float acc[THREAD_M][THREAD_N] = {};
    for (unsigned int l0 = l_begin; l0 < l_end; l0 += TILE_K) {
        // Copy the slabs: 1024 elements each, 4 per thread. Consecutive threads walk
        // whichever axis is contiguous in memory, so a warp's loads coalesce for a matrix
        // and for its transpose alike.
        for (unsigned int e = threadIdx.x; e < TILE_M * TILE_K; e += THREADS) {
            unsigned int i, l;
            if (p.a_cs == 1) { i = e / TILE_K; l = e % TILE_K; } else { i = e % TILE_M; l = e / TILE_M; }
            unsigned int gi = row0 + i, gl = l0 + l;
            as_t[l][i] = (gi < p.m && gl < l_end) ? a[(size_t)gi * p.a_rs + (size_t)gl * p.a_cs] : 0.0f;
        }
        for (unsigned int e = threadIdx.x; e < TILE_K * TILE_N; e += THREADS) {
            unsigned int l, j;
            if (p.b_cs == 1) { l = e / TILE_N; j = e % TILE_N; } else { j = e / TILE_K; l = e % TILE_K; }
            unsigned int gl = l0 + l, gj = col0 + j;
            bs[l][j] = (gl < l_end && gj < p.n) ? b[(size_t)gl * p.b_rs + (size_t)gj * p.b_cs] : 0.0f;
        }
        __syncthreads();  // the slabs are complete before anyone reads them

        for (unsigned int l = 0; l < TILE_K; l++) {
            float ar[THREAD_M], br[THREAD_N];
            for (int r = 0; r < THREAD_M; r++) ar[r] = as_t[l][ty + 16 * r];
            for (int s = 0; s < THREAD_N; s++) br[s] = bs[l][tx + 16 * s];
            for (int r = 0; r < THREAD_M; r++)
                for (int s = 0; s < THREAD_N; s++) acc[r][s] += ar[r] * br[s];
        }
        __syncthreads();  // everyone is done with the slabs before they are overwritten
    }

    for (int r = 0; r < THREAD_M; r++) {
        unsigned int i = row0 + ty + 16 * r;
        if (i >= p.m) continue;
        for (int s = 0; s < THREAD_N; s++) {
            unsigned int j = col0 + tx + 16 * s;
            if (j >= p.n) continue;
            float* cij = &c[(size_t)i * p.n + j];
            // With beta = 0, C is not read at all: it may hold garbage (even NaN), as the
            // CPU gemm allows.
            *cij = p.beta == 0.0f ? acc[r][s] : acc[r][s] + p.beta * *cij;
        }
    }
}

// Mirrors src/cuda/gemm.rs `SplitSum`, field for field.
struct SplitSum {
    unsigned int mn;        // values per product (m x n)
    unsigned int count;     // products
    unsigned int splits;    // partials per product, consecutive in `parts`
    unsigned int c_bs;      // batch stride of C
    float beta;             // 0 or 1
};
static_assert(sizeof(SplitSum) == 20, "SplitSum must match its Rust mirror");

// One thread per output (z, e): C_z[e] = sum over slices q, in order, of part_{z,q}[e],
// plus beta C_z[e]. Consecutive threads read consecutive values of each partial.
extern "C" __global__ void gemm_sum_splits(const float* parts, float* c, SplitSum p) {
    const size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (size_t)p.count * p.mn) return;
    const size_t z = t / p.mn, e = t % p.mn;
    float sum = 0.0f;
    for (unsigned int q = 0; q < p.splits; q++) sum += parts[(z * p.splits + q) * p.mn + e];
    float* cz = &c[z * p.c_bs + e];
    *cz = p.beta == 0.0f ? sum : sum + p.beta * *cz;
}
