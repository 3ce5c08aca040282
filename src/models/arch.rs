//! The study's layers and architectures: what each autoencoder is made of, shapes in the
//! comments. `Model` (in `mod.rs`) builds its parameters and runs it.

/// MNIST images are 28 x 28 = 784 pixels.
pub const SIDE: usize = 28;
pub const PIXELS: usize = SIDE * SIDE;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// y = x W^T + b, W (d_out, d_in).
    Linear {
        d_in: usize,
        d_out: usize,
    },
    Relu,
    /// 3x3-style convolution, weight (c_out, c_in, k, k).
    Conv2d {
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        padding: usize,
    },
    /// Transposed convolution, weight (c_in, c_out, k, k).
    ConvTranspose2d {
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        padding: usize,
    },
    /// 2x2 / stride 2; pushes its indices for a later unpool.
    MaxPool2d,
    /// Pops the latest pool's indices and restores that pool's input size.
    MaxUnpool2d,
    /// (n, 784) -> (n, 1, 28, 28).
    ToImage,
    /// (n, c, h, w) -> (n, c*h*w).
    Flatten,
}

impl Layer {
    /// The shapes of this layer's weight and bias and the fan-in of its initialisation.
    pub(crate) fn param_shapes(&self) -> Option<([usize; 4], usize, usize)> {
        match *self {
            Layer::Linear { d_in, d_out } => Some(([d_out, d_in, 1, 1], d_out, d_in)),
            Layer::Conv2d { c_in, c_out, k, .. } => Some(([c_out, c_in, k, k], c_out, c_in * k * k)),
            // PyTorch takes a transposed conv's fan-in from weight.size(1) * k * k.
            Layer::ConvTranspose2d { c_in, c_out, k, .. } => Some(([c_in, c_out, k, k], c_out, c_out * k * k)),
            _ => None,
        }
    }
}

/// Which autoencoder: the study's architectures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// 784-512-256-128-30 and back, the PCA comparison.
    DeepAe,
    /// 784 -> h (code) -> h -> 784: the hidden-size, sparse (h = 900) and denoising AEs.
    Shallow {
        hidden: usize,
    },
    /// 784-64-8 and back: an 8-d code to walk around in.
    Manifold,
    CaeUnpool,
    CaeDeconv,
    CaeDeconvUnpool,
}

impl Arch {
    /// The names used on the command line and by `torch_ref.py`: ae, h64, ..., cae-unpool.
    pub fn from_name(name: &str) -> Option<Arch> {
        Some(match name {
            "ae" => Arch::DeepAe,
            "manifold" => Arch::Manifold,
            "cae-unpool" => Arch::CaeUnpool,
            "cae-deconv" => Arch::CaeDeconv,
            "cae-deconv-unpool" => Arch::CaeDeconvUnpool,
            _ => Arch::Shallow { hidden: name.strip_prefix('h')?.parse().ok().filter(|&h| h > 0)? },
        })
    }

    pub fn name(&self) -> String {
        match self {
            Arch::DeepAe => "ae".into(),
            Arch::Shallow { hidden } => format!("h{hidden}"),
            Arch::Manifold => "manifold".into(),
            Arch::CaeUnpool => "cae-unpool".into(),
            Arch::CaeDeconv => "cae-deconv".into(),
            Arch::CaeDeconvUnpool => "cae-deconv-unpool".into(),
        }
    }

    /// (encoder, decoder).
    pub fn layers(&self) -> (Vec<Layer>, Vec<Layer>) {
        use Layer::*;
        let fc = |d_in, d_out| Linear { d_in, d_out };
        let conv = |c_in, c_out| Conv2d { c_in, c_out, k: 3, stride: 1, padding: 1 };
        let convt = |c_in, c_out, k, stride, padding| ConvTranspose2d { c_in, c_out, k, stride, padding };
        // The three CAEs share this encoder: 1x28x28 -> 8x14x14 -> 16x7x7 -> 16x3x3.
        let cae_encoder =
            vec![ToImage, conv(1, 8), Relu, MaxPool2d, conv(8, 16), Relu, MaxPool2d, conv(16, 16), Relu, MaxPool2d];
        match *self {
            Arch::DeepAe => (
                vec![fc(784, 512), Relu, fc(512, 256), Relu, fc(256, 128), Relu, fc(128, 30)],
                vec![fc(30, 128), Relu, fc(128, 256), Relu, fc(256, 784), Relu, fc(784, 784), Relu],
            ),
            Arch::Shallow { hidden: h } => (vec![fc(784, h), Relu], vec![fc(h, h), Relu, fc(h, 784), Relu]),
            Arch::Manifold => (vec![fc(784, 64), Relu, fc(64, 8), Relu], vec![fc(8, 64), Relu, fc(64, 784), Relu]),
            // 16x3x3 -unpool-> 16x7x7 (identity) -unpool-> 16x14x14 -conv-> 8x14x14
            // -unpool-> 8x28x28 -conv-> 1x28x28
            Arch::CaeUnpool => {
                (cae_encoder, vec![MaxUnpool2d, MaxUnpool2d, conv(16, 8), Relu, MaxUnpool2d, conv(8, 1), Relu, Flatten])
            }
            // 16x3x3 -> 16x7x7 -> 8x14x14 -> 1x28x28
            Arch::CaeDeconv => (
                cae_encoder,
                vec![convt(16, 16, 3, 2, 0), Relu, convt(16, 8, 4, 2, 1), Relu, convt(8, 1, 4, 2, 1), Relu, Flatten],
            ),
            // unpool -> convT 16->16 -> unpool -> convT 16->8 -> unpool -> convT 8->1 (all k3 s1 p1)
            Arch::CaeDeconvUnpool => (
                cae_encoder,
                vec![
                    MaxUnpool2d,
                    convt(16, 16, 3, 1, 1),
                    Relu,
                    MaxUnpool2d,
                    convt(16, 8, 3, 1, 1),
                    Relu,
                    MaxUnpool2d,
                    convt(8, 1, 3, 1, 1),
                    Relu,
                    Flatten,
                ],
            ),
        }
    }
}
