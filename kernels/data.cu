// Batches of training images, gathered on the GPU. The CPU twin is `Images::batch_into`
// in src/data/idx.rs.
//
//     batch_into: out[i][j] = pixels[rows[i]][j] / 255      i < n (images in the batch), j < d (pixels)
//
// The training set is uploaded once, as bytes (47 MB for MNIST, a quarter of its f32 size),
// and each batch is gathered and scaled to [0, 1] here: a training step copies nothing
// from the host but its n row numbers, which arrive once per epoch as the shuffled order.
// One thread per output value, which it alone writes. The division is IEEE-rounded
// (NVRTC's default -prec-div=true), so every value is the CPU's to the bit.

extern "C" __global__ void batch_into(const unsigned char* pixels, const unsigned int* rows, float* out, unsigned int n, unsigned int d) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n * d) return;
    const unsigned int image = rows[i / d];
    out[i] = (float)pixels[(size_t)image * d + i % d] / 255.0f;
}
