"""The encoder fine-tuning step in PyTorch on the CPU: the reference a Python user would get.

Times the dense fine-tuning step of a BERT encoder of the shape fineprune's encoder benchmarks use
(src/encoder-throughput.ts, src/bert-base-scale.ts): post-layer-norm BERT layers with exact (erf)
GELU, dropout 0.1, a [CLS] classification head, word embeddings frozen as in the movement-pruning
paper, Adam. Written in plain torch (no Hugging Face package, which Debian does not ship), with the
same arithmetic per layer as BertLayer. Random token ids: the step's cost does not depend on them.

`--method mvp` adds what a naive movement-pruning user writes: one learned score per prunable
weight, a global Top-v mask recomputed every step by kthvalue over all the scores, and the
straight-through estimator (the mask's gradient passed to the scores as dL/dW' * W, Movement
Pruning Eq. 2 and Sec. 4).

    python3 bench/python/encoder_step_torch.py [--shape tiny|base] [--batch 16] [--length 128]
        [--steps 12] [--threads 2] [--method dense|mvp] [--output results/encoder-step-torch.json]

Needs Debian's python3-torch and libopenblas0-pthread (not run by CI).
"""

import argparse
import json
import math
import os
import statistics
import time

import torch
from torch import nn

SHAPES = {
    "tiny": dict(layers=2, hidden=128, heads=2, intermediate=512, vocab=30522, positions=512),
    "base": dict(layers=12, hidden=768, heads=12, intermediate=3072, vocab=30522, positions=512),
}


class TopVStraightThrough(torch.autograd.Function):
    """Mask = 1 where the score is above the global threshold; gradient passed straight through."""

    @staticmethod
    def forward(ctx, scores, threshold):
        return (scores > threshold).to(scores.dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class Linear(nn.Module):
    """y = x W + b, with an optional movement-pruning mask on W."""

    def __init__(self, inputs, outputs, scored):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(inputs, outputs) * 0.02)
        self.bias = nn.Parameter(torch.zeros(outputs))
        self.scores = nn.Parameter(torch.zeros(inputs, outputs)) if scored else None
        self.threshold = None

    def forward(self, x):
        weight = self.weight
        if self.scores is not None:
            weight = weight * TopVStraightThrough.apply(self.scores, self.threshold)
        return x @ weight + self.bias


class Layer(nn.Module):
    def __init__(self, hidden, heads, intermediate, scored):
        super().__init__()
        self.heads = heads
        self.query = Linear(hidden, hidden, scored)
        self.key = Linear(hidden, hidden, scored)
        self.value = Linear(hidden, hidden, scored)
        self.output = Linear(hidden, hidden, scored)
        self.norm1 = nn.LayerNorm(hidden, eps=1e-12)
        self.up = Linear(hidden, intermediate, scored)
        self.down = Linear(intermediate, hidden, scored)
        self.norm2 = nn.LayerNorm(hidden, eps=1e-12)
        self.dropout = nn.Dropout(0.1)

    def forward(self, x, additive_mask):
        batch, length, hidden = x.shape
        size = hidden // self.heads

        def split(t):
            return t.view(batch, length, self.heads, size).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(size) + additive_mask
        probabilities = self.dropout(torch.softmax(scores, dim=-1))
        context = (probabilities @ v).transpose(1, 2).reshape(batch, length, hidden)
        x = self.norm1(x + self.dropout(self.output(context)))
        inner = nn.functional.gelu(self.up(x))
        return self.norm2(x + self.dropout(self.down(inner)))


class Encoder(nn.Module):
    def __init__(self, shape, labels, scored):
        super().__init__()
        hidden = shape["hidden"]
        self.words = nn.Embedding(shape["vocab"], hidden)
        self.words.weight.requires_grad_(False)
        self.positions = nn.Embedding(shape["positions"], hidden)
        self.types = nn.Embedding(2, hidden)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)
        self.dropout = nn.Dropout(0.1)
        self.layers = nn.ModuleList(
            Layer(hidden, shape["heads"], shape["intermediate"], scored) for _ in range(shape["layers"])
        )
        self.pooler = nn.Linear(hidden, hidden)
        self.classifier = nn.Linear(hidden, labels)

    def forward(self, ids, attention):
        positions = torch.arange(ids.shape[1]).unsqueeze(0)
        x = self.words(ids) + self.positions(positions) + self.types(torch.zeros_like(ids))
        x = self.dropout(self.norm(x))
        additive = (1.0 - attention[:, None, None, :].float()) * -10000.0
        for layer in self.layers:
            x = layer(x, additive)
        pooled = torch.tanh(self.pooler(x[:, 0]))
        return self.classifier(self.dropout(pooled))


def prunable(model):
    return [m for m in model.modules() if isinstance(m, Linear)]


def select_global(model, remaining):
    """The naive global Top-v: the k-th largest of all scores, by kthvalue, every step."""
    with torch.no_grad():
        everything = torch.cat([m.scores.flatten() for m in prunable(model)])
        k = max(1, int(round(everything.numel() * (1 - remaining))))
        threshold = torch.kthvalue(everything, k).values
        for m in prunable(model):
            m.threshold = threshold


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--method", choices=["dense", "mvp"], default="dense")
    parser.add_argument("--output")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    shape = SHAPES[args.shape]
    model = Encoder(shape, labels=15, scored=args.method == "mvp")
    weights = [p for n, p in model.named_parameters() if p.requires_grad and not n.endswith("scores")]
    groups = [{"params": weights, "lr": 3e-5}]
    if args.method == "mvp":
        groups.append({"params": [m.scores for m in prunable(model)], "lr": 1e-2})
    optimizer = torch.optim.Adam(groups)
    ids = torch.randint(1000, shape["vocab"], (args.batch, args.length))
    attention = torch.ones(args.batch, args.length, dtype=torch.long)
    labels = torch.randint(0, 15, (args.batch,))
    times = []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        if args.method == "mvp":
            select_global(model, remaining=0.1)
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(ids, attention), labels)
        loss.backward()
        optimizer.step()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    step_ms = statistics.median(times) * 1000
    result = {
        "shape": args.shape,
        "method": args.method,
        "batch": args.batch,
        "length": args.length,
        "threads": args.threads,
        "torch": torch.__version__,
        "stepMs": step_ms,
        "tokensPerSecond": args.batch * args.length / (step_ms / 1000),
        "stepsMs": [t * 1000 for t in times],
    }
    print(json.dumps(result))
    if args.output:
        with open(args.output + ".tmp", "w") as f:
            json.dump(result, f, indent=2)
        os.replace(args.output + ".tmp", args.output)


if __name__ == "__main__":
    main()
