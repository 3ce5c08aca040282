"""Writes tests/data/torch_adam.json: torch.optim.Adam over 50 steps in two configurations,
in float64, for tests/adam_torch.rs.

    /work/torch-venv/bin/python scripts/make_adam_reference.py > tests/data/torch_adam.json

Each case gives the starting parameter, the 50 gradients fed to it and the parameter after
each step. The gradients are drawn to reach the update's edges: entries that stay near zero
(where eps matters), entries whose sign flips (the moments cancel), and a scale that shrinks
and grows (the second moment lags). 37 values: past four 8-lane blocks and a remainder.
"""
import json

import torch

STEPS, SIZE, SEED = 50, 37, 20


def main():
    torch.manual_seed(SEED)
    cases = []
    for lr, betas, eps in [(1e-3, (0.9, 0.999), 1e-8), (3e-2, (0.8, 0.99), 1e-6)]:
        p = torch.randn(SIZE, dtype=torch.float64).float().double()  # an f32 start, as the engine holds it
        param = p.clone().requires_grad_(True)
        opt = torch.optim.Adam([param], lr=lr, betas=betas, eps=eps)
        grads, after = [], []
        for step in range(STEPS):
            g = torch.randn(SIZE, dtype=torch.float64) * (0.1 + abs((step % 20) - 10) / 5)
            g[:4] *= 1e-7  # near zero: the update is governed by eps
            g[4:8] = (-1.0) ** step * (1 + step / 10)  # sign flips every step
            g = g.float().double()  # exactly representable in f32, as the engine reads it
            param.grad = g.clone()
            opt.step()
            grads.append(g.tolist())
            after.append(param.detach().tolist())
        cases.append({"lr": lr, "betas": list(betas), "eps": eps, "param": p.tolist(),
                      "grads": grads, "param_after_each_step": after})
    print(json.dumps({"generator": f"PyTorch {torch.__version__}, scripts/make_adam_reference.py",
                      "dtype": "float64", "seed": SEED, "cases": cases}))


if __name__ == "__main__":
    main()
