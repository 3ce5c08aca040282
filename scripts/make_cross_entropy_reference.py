#!/usr/bin/env python3
"""Writes the PyTorch reference cases for log-softmax + cross-entropy (tests/data/cross_entropy.json),
in the format of make_torch_reference.py, plus the integer labels of each case:

    /work/torch-venv/bin/python scripts/make_cross_entropy_reference.py > tests/data/cross_entropy.json

Each case: logits x (n, k), labels, PyTorch's F.cross_entropy(x, labels) (reduction 'mean')
and F.log_softmax(x, dim=1), an upstream gradient r for the loss and the gradient of
loss * r with respect to x, all in float64; x and r are rounded to float32 first, so that
the Rust side reads exactly PyTorch's inputs. One case has logits near 1e4, where a softmax
without the shift by the row's maximum overflows.
"""
import argparse, json, random
import torch
import torch.nn.functional as F


def t(x):
    return {"shape": list(x.shape), "data": x.detach().reshape(-1).tolist()}


def case(x, labels):
    # Inputs that float32 holds exactly, so that only our arithmetic can differ.
    x = x.float().double()
    leaf = x.clone().requires_grad_(True)
    loss = F.cross_entropy(leaf, labels).reshape(1)
    r = torch.randn_like(loss).float().double()
    (loss * r).sum().backward()
    return {"op": "cross_entropy", "attrs": {"reduction": "mean"}, "inputs": {"x": t(x)},
            "labels": labels.tolist(), "output": t(loss), "log_softmax": t(F.log_softmax(x, dim=1)),
            "upstream_grad": t(r), "grads": {"x": t(leaf.grad)}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=18)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    rnd = random.Random(args.seed)
    torch.set_default_dtype(torch.float64)
    cases = []
    for _ in range(4):
        n, k = rnd.randint(1, 9), rnd.randint(2, 12)
        cases.append(case(3 * torch.randn(n, k), torch.randint(0, k, (n,))))
    # The probe's own shape: ten classes.
    cases.append(case(torch.randn(16, 10), torch.randint(0, 10, (16,))))
    cases.append(case(1e4 + torch.randn(3, 5), torch.randint(0, 5, (3,))))
    print(json.dumps({"generator": f"PyTorch {torch.__version__}", "dtype": "float64", "seed": args.seed,
                      "gradient_convention": "grads[k] = d/d inputs[k] of sum(output * upstream_grad)", "cases": cases}))


if __name__ == "__main__":
    main()
