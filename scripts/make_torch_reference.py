#!/usr/bin/env python3
"""Writes a PyTorch reference case file in the format of ../shared/reference/torch_ops.json,
with shapes, strides and paddings drawn from a seed, so that tests/torch_reference.rs can be
checked against cases it has never seen:

    /work/torch-venv/bin/python scripts/make_torch_reference.py --seed 7 > /tmp/ref7.json
    TORCH_REFERENCE=/tmp/ref7.json cargo test --release --test torch_reference

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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    rnd = random.Random(args.seed)
    torch.set_default_dtype(torch.float64)
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
    print(json.dumps({"generator": f"PyTorch {torch.__version__}", "dtype": "float64", "seed": args.seed,
                      "gradient_convention": "grads[k] = d/d inputs[k] of sum(output * upstream_grad)", "cases": cases}))


if __name__ == "__main__":
    main()
