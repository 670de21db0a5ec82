"""The PyTorch reference for the MLP training-step benchmark (src/movement-step.ts).

The same network and step as fineprune's benchmark — a 784-300-100-10 ReLU MLP, batches of 100,
softmax cross-entropy on logits, Adam 1e-3 for the weights — written the way a Python user would
write it, with the methods of Movement Pruning (Sanh et al. 2020) done naively:

- dense: forward, loss, backward, Adam.
- mvp: movement pruning with local Top-v at 90% sparsity, the mask re-selected at every step by
  ``torch.kthvalue`` on each matrix's scores, straight-through to the scores (Sec. 4: the gradient
  reaching S is the gradient of W ⊙ M taken as if M were the identity in S), scores trained by
  Adam 1e-2.
- smvp: soft movement pruning, M = 1{σ(S) > τ} straight-through plus λ Σ σ(S) (Sec. 4), τ = 0.05.
- l0: hard-concrete gates (Louizos et al. 2017; Sec. 4 of the paper) with b = 2/3, l = −0.1,
  r = 1.1, uniform noise drawn every step, and the expected-L0 penalty λ Σ σ(S − b log(−l/r)).

The variants run interleaved step by step (the order rotates every step) so that each ratio is
measured side by side in one process. The inputs are seeded random batches (the step time does not
depend on the pixel values). Uses every core torch sees (``torch.get_num_threads()`` is recorded).

    /usr/bin/python3 bench/python/mlp_step_torch.py [--steps 300] [--output bench/results/mlp-step-torch.json]

Needs only torch (Debian's python3-torch with libopenblas0-pthread on the project's machine); not
run by CI.
"""

import argparse
import json
import math
import os
import statistics
import time

import torch
from torch import nn

SIZES = [784, 300, 100, 10]
BATCH = 100


class StraightThroughMask(torch.autograd.Function):
    """W ⊙ M forward; the gradient reaches W through M and S as if M were the identity in S."""

    @staticmethod
    def forward(ctx, weight, scores, mask):
        ctx.save_for_backward(weight, mask)
        return weight * mask

    @staticmethod
    def backward(ctx, grad):
        weight, mask = ctx.saved_tensors
        # ∂L/∂S = ∂L/∂(W⊙M) ⊙ W (Eq. 2 of Movement Pruning, straight-through estimator)
        return grad * mask, grad * weight, None


def make_mlp(seed):
    torch.manual_seed(seed)
    layers = []
    for index, (fan_in, fan_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layer = nn.Linear(fan_in, fan_out)
        nn.init.xavier_uniform_(layer.weight)
        nn.init.zeros_(layer.bias)
        layers.append(layer)
    return layers


def forward(layers, x, weights):
    for index, (layer, weight) in enumerate(zip(layers, weights)):
        x = nn.functional.linear(x, weight, layer.bias)
        if index < len(layers) - 1:
            x = torch.relu(x)
    return x


class Variant:
    def __init__(self, kind, seed):
        self.kind = kind
        self.layers = make_mlp(seed)
        parameters = [p for layer in self.layers for p in layer.parameters()]
        self.optimizer = torch.optim.Adam(parameters, lr=1e-3)
        self.scores = []
        if kind != "dense":
            init = math.log(0.95 / 0.05) if kind == "l0" else 0.0
            self.scores = [torch.full_like(layer.weight, init, requires_grad=True) for layer in self.layers]
            self.score_optimizer = torch.optim.Adam(self.scores, lr=1e-2)

    def masked_weights(self):
        if self.kind == "dense":
            return [layer.weight for layer in self.layers], None
        if self.kind == "mvp":
            masks = []
            for scores in self.scores:
                # keep the top 10%: the k-th smallest value with k = 90% of the entries, every step
                k = int(0.9 * scores.numel())
                cut = torch.kthvalue(scores.detach().flatten(), k).values
                masks.append((scores.detach() > cut).float())
            return [StraightThroughMask.apply(l.weight, s, m) for l, s, m in zip(self.layers, self.scores, masks)], None
        if self.kind == "smvp":
            tau = 0.05
            masks = [(torch.sigmoid(s.detach()) > tau).float() for s in self.scores]
            weights = [StraightThroughMask.apply(l.weight, s, m) for l, s, m in zip(self.layers, self.scores, masks)]
            # R(S) = λ Σ σ(S) (Sec. 4)
            penalty = 1e-6 * sum(torch.sigmoid(s).sum() for s in self.scores)
            return weights, penalty
        # l0: S̄ = σ((log u − log(1 − u) + S)/b), Z = (r − l)S̄ + l, M = min(1, ReLU(Z)) (Sec. 4)
        beta, left, right = 2 / 3, -0.1, 1.1
        weights = []
        for layer, scores in zip(self.layers, self.scores):
            u = torch.empty_like(scores).uniform_(1e-6, 1 - 1e-6)
            stretched = torch.sigmoid((torch.log(u) - torch.log1p(-u) + scores) / beta)
            gate = torch.clamp((right - left) * stretched + left, 0, 1)
            weights.append(layer.weight * gate)
        # E[L0] = Σ σ(S − b log(−l/r))
        penalty = 1e-6 * sum(torch.sigmoid(s - beta * math.log(-left / right)).sum() for s in self.scores)
        return weights, penalty

    def step(self, x, y):
        self.optimizer.zero_grad(set_to_none=True)
        if self.scores:
            self.score_optimizer.zero_grad(set_to_none=True)
        weights, penalty = self.masked_weights()
        loss = nn.functional.cross_entropy(forward(self.layers, x, weights), y)
        if penalty is not None:
            loss = loss + penalty
        loss.backward()
        self.optimizer.step()
        if self.scores:
            self.score_optimizer.step()
        return loss.item()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--variants", default="dense,mvp,smvp,l0")
    parser.add_argument(
        "--output",
        default=os.path.join(os.path.dirname(__file__), "..", "results", "mlp-step-torch.json"),
    )
    args = parser.parse_args()
    kinds = args.variants.split(",")
    variants = [Variant(kind, seed=1) for kind in kinds]
    generator = torch.Generator().manual_seed(3)
    times = {kind: [] for kind in kinds}
    for step in range(args.warmup + args.steps):
        x = torch.rand(BATCH, SIZES[0], generator=generator)
        y = torch.randint(0, SIZES[-1], (BATCH,), generator=generator)
        for offset in range(len(variants)):
            variant = variants[(step + offset) % len(variants)]
            start = time.perf_counter()
            variant.step(x, y)
            elapsed = (time.perf_counter() - start) * 1000
            if step >= args.warmup:
                times[variant.kind].append(elapsed)
    dense = statistics.median(times["dense"]) if "dense" in times else None
    rows = {}
    for kind, values in times.items():
        median = statistics.median(values)
        rows[kind] = {
            "medianMs": round(median, 3),
            "meanMs": round(statistics.fmean(values), 3),
            "samples": len(values),
            **({"overDense": round(median / dense, 3)} if dense else {}),
        }
    result = {
        "framework": f"torch {torch.__version__}",
        "threads": torch.get_num_threads(),
        "network": "784-300-100-10 ReLU, batch 100, softmax cross-entropy, Adam 1e-3 (scores Adam 1e-2)",
        "steps": args.steps,
        "variants": rows,
        "measuredAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    temporary = args.output + ".tmp"
    with open(temporary, "w") as file:
        json.dump(result, file, indent=2)
        file.write("\n")
    os.replace(temporary, args.output)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
