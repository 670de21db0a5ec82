"""Pretrains the small offline encoder with masked-language modelling in PyTorch, on a GPU.

The TypeScript script (src/encoder-pretrain.ts) pretrains the same encoder with fineprune's own
BERT on TF.js; on this project's CPU machines it manages ~600 steps in 37 minutes, far from a
converged encoder. This script trains Hugging Face's BertForMaskedLM of the same shape on the same
token ids (the corpus written by `pnpm encoder-data`: State of the Union + Moby Dick + the Brown
training texts, 128-wordpiece sequences, the same held-out share) with the same objective and
optimiser, and saves a Hugging Face checkpoint that fineprune imports with loadHuggingFaceWeights —
the path a user with a real bert-base-uncased file takes.

Masking as BERT (Devlin et al. 2019, Sec. 3.1) and as @fineprune/text's mlmBatches: 15% of the
non-reserved positions of each sequence (at least 1, at most 20), of which 80% become [MASK], 10% a
random non-reserved token, 10% stay. AdamW (weight decay 0.01), linear warm-up over 6% of the
steps then linear decay, global-norm clipping at 1. Deterministic: seeded generators and
torch.use_deterministic_algorithms, so the same arguments on the same GPU and software give the
same weights.

    CUBLAS_WORKSPACE_CONFIG=:4096:8 python3 bench/python/pretrain_encoder_torch.py \
        --data .cache/encoder-data.safetensors --output pretrained/encoder-small --steps 6000

Needs torch, transformers and safetensors (not installed by CI; run it where a GPU is).
"""

import argparse
import json
import math
import os
import time

import torch
from safetensors import safe_open
from transformers import BertConfig, BertForMaskedLM


def read_corpus(path):
    with safe_open(path, framework="pt") as f:
        meta = json.loads(f.metadata()["corpus"])
        tensors = {
            name: f.get_tensor(name)
            for name in [
                "corpus/train/ids",
                "corpus/train/lengths",
                "corpus/validation/ids",
                "corpus/validation/lengths",
                "corpus/reserved",
                "corpus/replacementIds",
            ]
        }
    length = meta["sequenceLength"]
    return {
        "meta": meta,
        "train": tensors["corpus/train/ids"].view(-1, length).long(),
        "train_lengths": tensors["corpus/train/lengths"].long(),
        "validation": tensors["corpus/validation/ids"].view(-1, length).long(),
        "validation_lengths": tensors["corpus/validation/lengths"].long(),
        "reserved": tensors["corpus/reserved"].bool(),
        "replacement": tensors["corpus/replacementIds"].long(),
    }


def mask_batch(ids, lengths, reserved, replacement, mask_id, generator, max_predictions=20, rate=0.15):
    """BERT's masking on a [B, L] batch; returns inputs, positions [B, P], targets, weights."""
    B, L = ids.shape
    device = ids.device
    position = torch.arange(L, device=device).expand(B, L)
    candidate = (~reserved[ids]) & (position < lengths[:, None])
    count = candidate.sum(1)
    k = torch.clamp(torch.round(count.float() * rate).long(), min=1, max=max_predictions)
    k = torch.minimum(k, count)
    noise = torch.rand((B, L), generator=generator, device=device)
    noise = torch.where(candidate, noise, torch.full_like(noise, -1.0))
    order = torch.argsort(noise, dim=1, descending=True)[:, :max_predictions]
    valid = torch.arange(max_predictions, device=device)[None, :] < k[:, None]
    positions = torch.where(valid, order, torch.zeros_like(order))
    targets = torch.gather(ids, 1, positions)
    action = torch.rand((B, max_predictions), generator=generator, device=device)
    random_ids = replacement[
        torch.randint(0, replacement.numel(), (B, max_predictions), generator=generator, device=device)
    ]
    new_values = torch.where(action < 0.8, torch.full_like(targets, mask_id), torch.where(action < 0.9, random_ids, targets))
    inputs = ids.clone()
    rows = torch.arange(B, device=device)[:, None].expand(B, max_predictions)
    inputs[rows[valid], positions[valid]] = new_values[valid]
    return inputs, positions, targets, valid.float()


def mlm_loss(model, inputs, lengths, positions, targets, weights):
    L = inputs.shape[1]
    attention = (torch.arange(L, device=inputs.device)[None, :] < lengths[:, None]).long()
    hidden = model.bert(input_ids=inputs, attention_mask=attention).last_hidden_state
    rows = torch.gather(hidden, 1, positions[:, :, None].expand(-1, -1, hidden.shape[-1]))
    logits = model.cls(rows)
    losses = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
    w = weights.flatten()
    loss = (losses * w).sum() / w.sum()
    correct = ((logits.argmax(-1).flatten() == targets.flatten()).float() * w).sum() / w.sum()
    return loss, correct


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--evaluate-every", type=int, default=500)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--intermediate", type=int, default=512)
    args = parser.parse_args()

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    started = time.time()

    data = read_corpus(args.data)
    meta = data["meta"]
    mask_id = meta["specialIds"]["mask"]
    train = data["train"].to(device)
    train_lengths = data["train_lengths"].to(device)
    validation = data["validation"][:512].to(device)
    validation_lengths = data["validation_lengths"][:512].to(device)
    reserved = data["reserved"].to(device)
    replacement = data["replacement"].to(device)

    config = BertConfig(
        vocab_size=meta["vocabSize"],
        hidden_size=args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        intermediate_size=args.intermediate,
        max_position_embeddings=meta["sequenceLength"],
        type_vocab_size=2,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        layer_norm_eps=1e-12,
        initializer_range=0.02,
    )
    model = BertForMaskedLM(config).to(device)
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.learning_rate,
    )
    warmup = round(0.06 * args.steps)

    def rate(step):
        if step < warmup:
            return (step + 1) / warmup
        return max((args.steps - step) / (args.steps - warmup), 1e-4)

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    order_generator = torch.Generator(device="cpu").manual_seed(args.seed)
    mask_generator = torch.Generator(device=device).manual_seed(args.seed + 1)
    count = train.shape[0]
    per_epoch = count // args.batch
    permutation = None

    def evaluate():
        model.eval()
        generator = torch.Generator(device=device).manual_seed(12345)
        total_loss = total_correct = total_weight = 0.0
        with torch.no_grad():
            for start in range(0, validation.shape[0], 128):
                ids = validation[start : start + 128]
                lengths = validation_lengths[start : start + 128]
                inputs, positions, targets, weights = mask_batch(
                    ids, lengths, reserved, replacement, mask_id, generator
                )
                loss, correct = mlm_loss(model, inputs, lengths, positions, targets, weights)
                w = weights.sum().item()
                total_loss += loss.item() * w
                total_correct += correct.item() * w
                total_weight += w
        model.train()
        return total_loss / total_weight, total_correct / total_weight

    history = []
    window = []
    train_started = time.time()
    model.train()
    for step in range(args.steps):
        if step % per_epoch == 0:
            permutation = torch.randperm(count, generator=order_generator).to(device)
        index = permutation[(step % per_epoch) * args.batch : (step % per_epoch + 1) * args.batch]
        ids, lengths = train[index], train_lengths[index]
        inputs, positions, targets, weights = mask_batch(ids, lengths, reserved, replacement, mask_id, mask_generator)
        loss, _ = mlm_loss(model, inputs, lengths, positions, targets, weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        window.append(loss.detach())
        if (step + 1) % args.evaluate_every == 0 or step + 1 == args.steps:
            validation_loss, accuracy = evaluate()
            row = {
                "step": step + 1,
                "trainLoss": torch.stack(window).mean().item(),
                "validationLoss": validation_loss,
                "validationAccuracy": accuracy,
                "seconds": time.time() - train_started,
            }
            window = []
            history.append(row)
            print(
                f"step {row['step']}: train loss {row['trainLoss']:.3f}, validation loss "
                f"{validation_loss:.3f}, masked-token accuracy {accuracy * 100:.1f}% ({row['seconds']:.0f} s)",
                flush=True,
            )
    seconds = time.time() - train_started

    os.makedirs(args.output, exist_ok=True)
    model.half().save_pretrained(args.output)
    record = {
        "trainer": "bench/python/pretrain_encoder_torch.py (Hugging Face BertForMaskedLM, PyTorch)",
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "config": config.to_dict(),
        "corpus": {**meta["sources"], "wordpieces": meta["wordpieces"], "trainingSequences": count,
                   "validationSequencesEvaluated": int(validation.shape[0]),
                   "sequenceLength": meta["sequenceLength"]},
        "training": {
            "steps": args.steps,
            "batchSize": args.batch,
            "epochs": args.steps * args.batch / count,
            "optimizer": f"AdamW, peak learning rate {args.learning_rate}, weight decay 0.01 (not on biases and "
            f"LayerNorm), {warmup} warm-up steps then linear decay, global-norm clipping 1",
            "masking": "15% of non-reserved positions (at least 1, at most 20 per sequence): 80% [MASK], "
            "10% random, 10% kept",
            "seed": args.seed,
            "deterministic": True,
            "seconds": round(seconds, 1),
            "msPerStep": round(seconds * 1000 / args.steps, 2),
        },
        "final": history[-1],
        "history": history,
        "files": {"dtype": "F16 (saved with save_pretrained after .half())"},
        "totalSeconds": round(time.time() - started, 1),
    }
    with open(os.path.join(args.output, "pretraining.json.tmp"), "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    os.replace(os.path.join(args.output, "pretraining.json.tmp"), os.path.join(args.output, "pretraining.json"))
    print(json.dumps(record["final"]), flush=True)


if __name__ == "__main__":
    main()
