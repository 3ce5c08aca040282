#!/usr/bin/env python3
"""Writes a PyTorch reference case file in the format of ../shared/reference/torch_ops.json,
with shapes, strides and paddings drawn from a seed, so that tests/torch_reference.rs can be
checked against cases it has never seen:

    /work/torch-venv/bin/python scripts/make_torch_reference.py --seed 7 > /tmp/ref7.json
    TORCH_REFERENCE=/tmp/ref7.json cargo test --release --test torch_reference

With --layers it writes instead the study's own layers at their real sizes (the CAEs'
convolutions and transposed convolutions, a linear layer of the MLPs, a pool and its unpool,
the losses over a batch), the file tests/torch_reference.rs reads gzipped:

    /work/torch-venv/bin/python scripts/make_torch_reference.py --layers --seed 1 \
        | gzip -9n > tests/data/torch_layers.json.gz

Every case: inputs, PyTorch's output (and pool indices), an upstream gradient r, and the
gradients of sum(output * r) with respect to every input, all in float64.
"""
import argparse, json, random
import torch
import torch.nn.functional as F


def t(x):
    return {"shape": list(x.shape), "data": x.detach().reshape(-1).tolist()}


def distinct(*shape):
    """Distinct values (no ties in a pool window), shuffled."""
    n = 1
    for s in shape:
        n *= s
    v = (torch.randperm(n, dtype=torch.float64) - n / 2) / (n / 4)
    return v.reshape(shape)


def case(op, attrs, inputs, fn, extra=None):
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    out = fn(**leaves)
    indices = None
    if isinstance(out, tuple):
        out, indices = out
    if out.dim() == 0:
        out = out.reshape(1)  # the format's losses have shape [1]
    r = torch.randn_like(out)
    (out * r).sum().backward()
    c = {"op": op, "attrs": attrs, "inputs": {k: t(v) for k, v in inputs.items()}, "output": t(out),
         "upstream_grad": t(r), "grads": {k: t(v.grad) for k, v in leaves.items()}}
    if indices is not None:
        c["indices"] = t(indices.double())
    if extra:
        c.update(extra)
    return c


def conv2d(n, ci, co, hw, k, s, p):
    return case("conv2d", {"stride": s, "padding": p},
                {"x": torch.randn(n, ci, hw, hw), "weight": torch.randn(co, ci, k, k), "bias": torch.randn(co)},
                lambda x, weight, bias: F.conv2d(x, weight, bias, stride=s, padding=p))


def conv_transpose2d(n, ci, co, hw, k, s, p):
    return case("conv_transpose2d", {"stride": s, "padding": p},
                {"x": torch.randn(n, ci, hw, hw), "weight": torch.randn(ci, co, k, k), "bias": torch.randn(co)},
                lambda x, weight, bias: F.conv_transpose2d(x, weight, bias, stride=s, padding=p))


def pool_and_unpool(n, c, hw):
    """max_pool2d of distinct values, and max_unpool2d at the indices it chose."""
    x = distinct(n, c, hw, hw)
    pooled, idx = F.max_pool2d(x, 2, 2, return_indices=True)
    unpool = case("max_unpool2d", {"kernel": 2, "stride": 2, "output_size": [hw, hw]}, {"x": torch.randn_like(pooled)},
                  lambda x: F.max_unpool2d(x, idx, 2, 2, output_size=(hw, hw)))
    unpool["indices"] = t(idx.double())
    return [case("max_pool2d", {"kernel": 2, "stride": 2}, {"x": x}, lambda x: F.max_pool2d(x, 2, 2, return_indices=True)),
            unpool]


def layers():
    """The study's layers at batch 4 (the MLP's at 8): the CAE encoders' 1 -> 8 on 28x28 and
    8 -> 16 on 14x14, cae-unpool's decoder 16 -> 8 on 14x14 (all k3 p1), whose weight
    gradients sum 4 x 28 x 28 or 4 x 14 x 14 products that cancel; cae-deconv's transposed
    convolutions 16 -> 8 (7x7 -> 14x14, k4 s2 p1) and 16 -> 16 (3x3 -> 7x7, k3 s2 p0); the
    784 -> 64 linear layer; the losses over a batch; and one image's 8 x 28 x 28 pool and its
    unpool (a batch of them would only repeat its planes, about 300 KB of file per image)."""
    n = 4
    cases = [conv2d(n, 1, 8, 28, 3, 1, 1), conv2d(n, 8, 16, 14, 3, 1, 1), conv2d(n, 16, 8, 14, 3, 1, 1),
             conv_transpose2d(n, 16, 8, 7, 4, 2, 1), conv_transpose2d(n, 16, 16, 3, 3, 2, 0)]
    cases.append(case("linear", {}, {"x": torch.randn(8, 784), "weight": torch.randn(64, 784), "bias": torch.randn(64)},
                      lambda x, weight, bias: F.linear(x, weight, bias)))
    cases += pool_and_unpool(1, 8, 28)
    cases.append(case("mse", {"reduction": "mean"}, {"x": torch.rand(n, 784), "target": torch.rand(n, 784)},
                      lambda x, target: F.mse_loss(x, target)))
    cases.append(case("l1_mean_abs", {}, {"x": distinct(8, 64) + 0.05}, lambda x: x.abs().mean()))
    return cases


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--layers", action="store_true", help="the study's layers at their real sizes")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    rnd = random.Random(args.seed)
    torch.set_default_dtype(torch.float64)
    cases = layers() if args.layers else random_cases(rnd)
    print(json.dumps({"generator": f"PyTorch {torch.__version__}", "dtype": "float64", "seed": args.seed,
                      "gradient_convention": "grads[k] = d/d inputs[k] of sum(output * upstream_grad)", "cases": cases}))


def random_cases(rnd):
    """Shapes, strides and paddings drawn from rnd."""
    cases = []
    for _ in range(3):
        n, i, o = rnd.randint(1, 6), rnd.randint(1, 40), rnd.randint(1, 40)
        cases.append(case("linear", {}, {"x": torch.randn(n, i), "weight": torch.randn(o, i), "bias": torch.randn(o)},
                          lambda x, weight, bias: F.linear(x, weight, bias)))
    cases.append(case("relu", {}, {"x": distinct(3, 7) + 0.05}, lambda x: F.relu(x)))
    for _ in range(4):
        n, ci, co, k, s, p = rnd.randint(1, 3), rnd.randint(1, 4), rnd.randint(1, 4), rnd.randint(1, 4), rnd.randint(1, 3), rnd.randint(0, 2)
        h, w = rnd.randint(max(1, k - 2 * p), 9), rnd.randint(max(1, k - 2 * p), 9)
        cases.append(case("conv2d", {"stride": s, "padding": p},
                          {"x": torch.randn(n, ci, h, w), "weight": torch.randn(co, ci, k, k), "bias": torch.randn(co)},
                          lambda x, weight, bias, s=s, p=p: F.conv2d(x, weight, bias, stride=s, padding=p)))
    for _ in range(4):
        n, ci, co, k, s, p = rnd.randint(1, 3), rnd.randint(1, 4), rnd.randint(1, 4), rnd.randint(1, 4), rnd.randint(1, 3), rnd.randint(0, 1)
        h, w = rnd.randint(2, 6), rnd.randint(2, 6)
        p = min(p, ((min(h, w) - 1) * s + k - 1) // 2)  # an output of at least one pixel
        cases.append(case("conv_transpose2d", {"stride": s, "padding": p},
                          {"x": torch.randn(n, ci, h, w), "weight": torch.randn(ci, co, k, k), "bias": torch.randn(co)},
                          lambda x, weight, bias, s=s, p=p: F.conv_transpose2d(x, weight, bias, stride=s, padding=p)))
    for _ in range(3):
        n, c, h, w = rnd.randint(1, 3), rnd.randint(1, 4), rnd.randint(2, 9), rnd.randint(2, 9)
        cases.append(case("max_pool2d", {"kernel": 2, "stride": 2}, {"x": distinct(n, c, h, w)},
                          lambda x: F.max_pool2d(x, 2, 2, return_indices=True)))
    for h, w in [(7, 7), (6, 5), (9, 8)]:
        n, c = rnd.randint(1, 3), rnd.randint(1, 4)
        pooled, idx = F.max_pool2d(distinct(n, c, h, w), 2, 2, return_indices=True)
        c_ = case("max_unpool2d", {"kernel": 2, "stride": 2, "output_size": [h, w]}, {"x": torch.randn_like(pooled)},
                  lambda x, idx=idx, h=h, w=w: F.max_unpool2d(x, idx, 2, 2, output_size=(h, w)))
        c_["indices"] = t(idx.double())
        cases.append(c_)
    cases.append(case("mse", {"reduction": "mean"}, {"x": torch.randn(4, 9), "target": torch.randn(4, 9)},
                      lambda x, target: F.mse_loss(x, target)))
    cases.append(case("l1_mean_abs", {}, {"x": distinct(6, 5) + 0.05}, lambda x: x.abs().mean()))
    for lr, betas, eps in [(1e-3, (0.9, 0.999), 1e-8), (3e-2, (0.8, 0.99), 1e-6)]:
        p = torch.randn(10)
        param = p.clone().requires_grad_(True)
        opt = torch.optim.Adam([param], lr=lr, betas=betas, eps=eps)
        grads, after = [], []
        for _ in range(5):
            g = torch.randn(10)
            param.grad = g.clone()
            opt.step()
            grads.append(t(g)); after.append(t(param))
        cases.append({"op": "adam", "attrs": {"lr": lr, "betas": list(betas), "eps": eps}, "inputs": {"param": t(p)},
                      "grad_sequence": grads, "param_after_each_step": after})
    return cases


if __name__ == "__main__":
    main()
