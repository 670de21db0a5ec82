import * as tf from '@tensorflow/tfjs-core';
import { adam, Pruner, sgd } from '@fineprune/core';
import { errorOf, fixedSparsity, testLearnedScores, testTopK } from '@fineprune/core/testing';
import { setBackend, withLeakGuard } from '@fineprune/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attentionRow, tinyEncoderConfig } from './test-support';
import {
  bertBaseUncasedConfig,
  configFromHuggingFace,
  configToHuggingFace,
  type EncoderConfig,
} from './config';
import type { BertTask } from './layout';
import { type BertModel, createBertModel, mlmAccuracy } from './model';

const tiny: EncoderConfig = tinyEncoderConfig;

const ids = [
  [2, 5, 7, 9, 0],
  [3, 1, 4, 0, 0],
];
const types = [
  [0, 0, 1, 1, 0],
  [0, 1, 1, 0, 0],
];
const masks = [
  [1, 1, 1, 1, 0],
  [1, 1, 1, 0, 0],
];

function inputs(idRows = ids) {
  return {
    inputIds: tf.tensor2d(idRows, undefined, 'int32'),
    tokenTypeIds: tf.tensor2d(types, undefined, 'int32'),
    attentionMask: tf.tensor2d(masks, undefined, 'int32'),
  };
}

function targets(task: BertTask): tf.Tensor | tf.Tensor[] {
  if (task.type === 'classification') return tf.tensor1d([1, 2], 'int32');
  if (task.type === 'span') return [tf.tensor1d([1, 0], 'int32'), tf.tensor1d([3, 2], 'int32')];
  return [
    tf.tensor2d(
      [
        [1, 3],
        [2, 0],
      ],
      undefined,
      'int32',
    ),
    tf.tensor2d(
      [
        [4, 8],
        [6, 1],
      ],
      undefined,
      'int32',
    ),
    tf.tensor2d([
      [1, 1],
      [1, 0],
    ]),
  ];
}

const tasks: BertTask[] = [
  { type: 'classification', numLabels: 3 },
  { type: 'span' },
  { type: 'mlm', maxPredictions: 2 },
];

// ---- A plain-JS BERT in doubles, written from the paper's description, as the reference. ----
type Matrix = number[][];
const erf = (x: number) => {
  let term = x;
  let sum = x;
  for (let n = 1; n < 150; n += 1) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
};
const geluRef = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));

function read(model: BertModel): Map<string, { values: number[]; shape: number[] }> {
  return new Map(
    model
      .variables()
      .map((entry) => [
        entry.name,
        { values: Array.from(entry.variable.dataSync()), shape: entry.variable.shape },
      ]),
  );
}

function referenceEncode(model: BertModel, idRows: number[][]): Matrix[] {
  const config = model.config;
  const weights = read(model);
  const H = config.hiddenSize;
  const get = (name: string) => weights.get(name)!.values;
  const row = (name: string, r: number) => get(name).slice(r * H, (r + 1) * H);
  const denseRef = (x: number[], name: string) => {
    const kernel = get(`${name}/kernel`);
    const bias = get(`${name}/bias`);
    const units = bias.length;
    return Array.from({ length: units }, (_, o) =>
      x.reduce((s, v, i) => s + v * kernel[i * units + o]!, bias[o]!),
    );
  };
  const norm = (x: number[], name: string) => {
    const gamma = get(`${name}/gamma`);
    const beta = get(`${name}/beta`);
    const mean = x.reduce((a, b) => a + b, 0) / x.length;
    const variance = x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length;
    return x.map(
      (v, i) => (gamma[i]! * (v - mean)) / Math.sqrt(variance + config.layerNormEpsilon) + beta[i]!,
    );
  };
  return idRows.map((sequence, s) => {
    let hidden = sequence.map((id, t) => {
      const sum = row('embeddings/word_embeddings', id).map(
        (v, i) =>
          v +
          row('embeddings/position_embeddings', t)[i]! +
          row('embeddings/token_type_embeddings', types[s]![t]!)[i]!,
      );
      return norm(sum, 'embeddings/layer_norm');
    });
    const heads = config.numHeads;
    for (let layer = 0; layer < config.numLayers; layer += 1) {
      const p = `layer_${layer}`;
      const q = hidden.map((h) => denseRef(h, `${p}/attention/query`));
      const k = hidden.map((h) => denseRef(h, `${p}/attention/key`));
      const v = hidden.map((h) => denseRef(h, `${p}/attention/value`));
      const context = hidden.map((_, i) => attentionRow(q, k, v, masks[s]!, heads, i));
      const attended = context.map((c, i) =>
        norm(
          denseRef(c, `${p}/attention/output`).map((x, c2) => x + hidden[i]![c2]!),
          `${p}/attention/layer_norm`,
        ),
      );
      hidden = attended.map((a) =>
        norm(
          denseRef(denseRef(a, `${p}/ffn/intermediate`).map(geluRef), `${p}/ffn/output`).map(
            (x, c) => x + a[c]!,
          ),
          `${p}/ffn/layer_norm`,
        ),
      );
    }
    return hidden;
  });
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`BERT model on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('encodes like the plain-JS reference (2 layers, padding mask, token types)', async () => {
      const model = createBertModel({ config: tiny, task: { type: 'span' }, seed: 3 });
      await withLeakGuard(() => {
        const x = inputs();
        const out = model.encode(x, { training: false });
        const actual = out.arraySync();
        const expected = referenceEncode(model, ids);
        // float32 through two layers of order-1 values: 1e-4.
        for (let s = 0; s < ids.length; s += 1) {
          for (let t = 0; t < ids[0]!.length; t += 1) {
            for (let c = 0; c < tiny.hiddenSize; c += 1) {
              expect(Math.abs(actual[s]![t]![c]! - expected[s]![t]![c]!)).toBeLessThan(1e-4);
            }
          }
        }
        tf.dispose([out, ...Object.values(x)]);
      });
      model.dispose();
    });

    it('ignores the ids at padded positions (outputs at real positions unchanged)', async () => {
      for (const task of tasks) {
        const model = createBertModel({ config: tiny, task, seed: 5 });
        await withLeakGuard(() => {
          const changed = ids.map((sequence, s) =>
            sequence.map((id, t) => (masks[s]![t] === 0 ? (id + 7) % 11 : id)),
          );
          const a = inputs();
          const b = inputs(changed);
          const outA = model.forward(a, { training: false });
          const outB = model.forward(b, { training: false });
          const values = (out: tf.Tensor | tf.Tensor[]) =>
            [out].flat().map((t) => t.arraySync() as number[][]);
          const [va, vb] = [values(outA), values(outB)];
          for (let o = 0; o < va.length; o += 1) {
            for (let s = 0; s < 2; s += 1) {
              const rowA = va[o]![s]!;
              const rowB = vb[o]![s]!;
              if (task.type === 'classification') {
                for (let c = 0; c < rowA.length; c += 1)
                  expect(Math.abs(rowA[c]! - rowB[c]!)).toBeLessThan(1e-5);
                continue;
              }
              for (let t = 0; t < masks[s]!.length; t += 1) {
                if (masks[s]![t] === 0) continue;
                const cellA = [rowA[t]!].flat() as number[];
                const cellB = [rowB[t]!].flat() as number[];
                for (let c = 0; c < cellA.length; c += 1) {
                  expect(Math.abs(cellA[c]! - cellB[c]!)).toBeLessThan(1e-5); // padding invariance, float32
                }
              }
            }
          }
          tf.dispose([outA, outB, ...Object.values(a), ...Object.values(b)].flat());
        });
        model.dispose();
      }
    });

    it('adds −10000 to span logits at padded positions', async () => {
      const model = createBertModel({ config: tiny, task: { type: 'span' }, seed: 5 });
      const x = inputs();
      const [start, end] = model.forward(x, { training: false }) as tf.Tensor2D[];
      const starts = start!.arraySync();
      expect(starts[1]![3]!).toBeLessThan(-9000);
      expect(starts[0]![3]!).toBeGreaterThan(-100);
      tf.dispose([start!, end!, ...Object.values(x)]);
      model.dispose();
    });

    it('exposes the six projections of every layer as prunable [in, out] dense parameters', () => {
      const model = createBertModel({ config: tiny, task: { type: 'classification', numLabels: 3 } });
      const names = model.parameters().map((parameter) => parameter.name);
      expect(names).toEqual(
        [0, 1].flatMap((i) => [
          `layer_${i}/attention/query/kernel`,
          `layer_${i}/attention/key/kernel`,
          `layer_${i}/attention/value/kernel`,
          `layer_${i}/attention/output/kernel`,
          `layer_${i}/ffn/intermediate/kernel`,
          `layer_${i}/ffn/output/kernel`,
        ]),
      );
      expect(model.parameters().map((p) => p.group)).toEqual([
        ...Array(6).fill('layer_0'),
        ...Array(6).fill('layer_1'),
      ]);
      expect(model.parameters().every((p) => p.kind === 'dense')).toBe(true);
      expect(model.parameters()[4]!.shape).toEqual([4, 8]);
      expect(model.parameters()[5]!.shape).toEqual([8, 4]);
      // Frozen embeddings by default for classification; trainable for mlm.
      expect(model.frozenVariables().map((entry) => entry.name)).toEqual([
        'embeddings/word_embeddings',
        'embeddings/position_embeddings',
        'embeddings/token_type_embeddings',
        'embeddings/layer_norm/gamma',
        'embeddings/layer_norm/beta',
      ]);
      const trainable = model.trainableVariables().map((entry) => entry.name);
      expect(trainable).toContain('pooler/kernel');
      expect(trainable).toContain('classifier/bias');
      expect(trainable).toContain('layer_1/ffn/layer_norm/beta');
      expect(trainable.length + 5).toBe(model.variables().length);
      model.dispose();
      const mlm = createBertModel({ config: tiny, task: { type: 'mlm', maxPredictions: 2 } });
      expect(mlm.frozenVariables()).toEqual([]);
      expect(mlm.trainableVariables().map((entry) => entry.name)).toContain('embeddings/word_embeddings');
      mlm.dispose();
    });

    it('runs the forward pass on the masked (effective) weights', async () => {
      const model = createBertModel({
        config: tiny,
        task: { type: 'classification', numLabels: 3 },
        seed: 2,
      });
      const x = inputs();
      const before = (model.forward(x, { training: false }) as tf.Tensor).arraySync() as number[][];
      const parameter = model.parameters()[4]!; // layer_0/ffn/intermediate/kernel
      const original = parameter.weight.clone();
      tf.tidy(() => parameter.mask.assign(tf.zeros([...parameter.shape])));
      const masked = model.forward(x, { training: false }) as tf.Tensor;
      tf.tidy(() => {
        parameter.mask.assign(tf.ones([...parameter.shape]));
        parameter.weight.assign(tf.zeros([...parameter.shape]));
      });
      const zeroed = model.forward(x, { training: false }) as tf.Tensor;
      // A zero mask acts exactly like zero weights, and differs from the unmasked model.
      expect(Array.from(masked.dataSync())).toEqual(Array.from(zeroed.dataSync()));
      expect(Math.abs(masked.dataSync()[0]! - before[0]![0]!)).toBeGreaterThan(1e-4);
      parameter.weight.assign(original);
      tf.dispose([original, masked, zeroed, ...Object.values(x)]);
      model.dispose();
    });

    it('gives the same weights for the same seed and different ones for another', () => {
      const a = createBertModel({ config: tiny, task: { type: 'span' }, seed: 9 });
      const b = createBertModel({ config: tiny, task: { type: 'span' }, seed: 9 });
      const c = createBertModel({ config: tiny, task: { type: 'span' }, seed: 10 });
      const first = (m: BertModel) => Array.from(m.variables()[5]!.variable.dataSync());
      expect(first(a)).toEqual(first(b));
      expect(first(a)).not.toEqual(first(c));
      // Truncated normal(0, 0.5): every draw within two standard deviations.
      expect(first(a).every((value) => Math.abs(value) <= 1)).toBe(true);
      for (const m of [a, b, c]) m.dispose();
    });

    it('draws dropout from the seeded stream: same state, same loss; next draw, another loss', async () => {
      const config = { ...tiny, hiddenDropout: 0.3, attentionDropout: 0.3 };
      const model = createBertModel({ config, task: { type: 'classification', numLabels: 3 }, seed: 4 });
      const x = inputs();
      const y = targets(model.task);
      const lossOf = (training: boolean) =>
        tf.tidy(() => model.loss(model.forward(x, { training }), { x, y }).dataSync()[0]!);
      const state = model.dropoutState();
      const first = lossOf(true);
      const second = lossOf(true);
      model.setDropoutState(state);
      expect(lossOf(true)).toBe(first);
      expect(second).not.toBe(first);
      expect(lossOf(false)).toBe(lossOf(false));
      tf.dispose([...Object.values(x), ...[y].flat()]);
      model.dispose();
    });

    it('computes each task loss by its definition', () => {
      for (const task of tasks) {
        const model = createBertModel({ config: tiny, task, seed: 11 });
        const x = inputs();
        const y = targets(task);
        const outputs = model.forward(x, { training: false });
        const loss = model.loss(outputs, { x, y }).dataSync()[0]!;
        const logSoftmax = (row: number[], label: number) => {
          const top = Math.max(...row);
          return Math.log(row.reduce((s, v) => s + Math.exp(v - top), 0)) + top - row[label]!;
        };
        let expected: number;
        if (task.type === 'classification') {
          const logits = (outputs as tf.Tensor2D).arraySync();
          expected = (logSoftmax(logits[0]!, 1) + logSoftmax(logits[1]!, 2)) / 2;
        } else if (task.type === 'span') {
          const [start, end] = (outputs as tf.Tensor2D[]).map((t) => t.arraySync());
          const ce = (logits: number[][], labels: number[]) =>
            (logSoftmax(logits[0]!, labels[0]!) + logSoftmax(logits[1]!, labels[1]!)) / 2;
          expected = (ce(start!, [1, 0]) + ce(end!, [3, 2])) / 2;
        } else {
          const [positions, ,] = y as tf.Tensor[];
          const logits = model.mlmLogits(outputs as tf.Tensor, positions!);
          const rows = logits.arraySync();
          // weights [[1, 1], [1, 0]]: Σ w·CE / Σ w over the three weighted predictions.
          expected =
            (logSoftmax(rows[0]![0]!, 4) + logSoftmax(rows[0]![1]!, 8) + logSoftmax(rows[1]![0]!, 6)) / 3;
          logits.dispose();
        }
        // float32 logits of order 1: 1e-5.
        expect(Math.abs(loss - expected)).toBeLessThan(1e-5);
        tf.dispose([[outputs].flat(), ...Object.values(x), [y].flat()].flat());
        model.dispose();
      }
    });

    it('reports weighted MLM accuracy', async () => {
      const model = createBertModel({ config: tiny, task: { type: 'mlm', maxPredictions: 2 }, seed: 1 });
      const x = inputs();
      const hidden = model.forward(x, { training: false }) as tf.Tensor;
      const positions = tf.tensor2d(
        [
          [1, 3],
          [2, 0],
        ],
        undefined,
        'int32',
      );
      const logits = model.mlmLogits(hidden, positions);
      const predicted = tf.argMax(logits, 2).arraySync() as number[][];
      // Targets: the predictions themselves at two weighted slots, a wrong id at the third.
      const ids2 = tf.tensor2d(
        [
          [predicted[0]![0]!, predicted[0]![1]!],
          [(predicted[1]![0]! + 1) % 11, 0],
        ],
        undefined,
        'int32',
      );
      const weights = tf.tensor2d([
        [1, 1],
        [1, 0],
      ]);
      const { accuracy, weight } = await mlmAccuracy(model, hidden, [positions, ids2, weights]);
      expect(weight).toBe(3);
      expect(accuracy).toBeCloseTo(2 / 3, 6);
      tf.dispose([hidden, positions, logits, ids2, weights, ...Object.values(x)]);
      model.dispose();
    });

    it('copies the encoder of an MLM model into a classifier (transfer)', () => {
      const mlm = createBertModel({ config: tiny, task: { type: 'mlm', maxPredictions: 2 }, seed: 1 });
      const classifier = createBertModel({
        config: tiny,
        task: { type: 'classification', numLabels: 2 },
        seed: 2,
      });
      tf.tidy(() => mlm.parameters()[0]!.mask.assign(tf.zeros([...mlm.parameters()[0]!.shape])));
      const x = inputs();
      classifier.copyEncoderFrom(mlm);
      const a = mlm.encode(x, { training: false });
      const b = classifier.encode(x, { training: false });
      expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
      expect(Array.from(classifier.parameters()[0]!.mask.dataSync()).every((v) => v === 0)).toBe(true);
      const other = createBertModel({ config: { ...tiny, intermediateSize: 6 }, task: { type: 'span' } });
      expect(errorOf(() => classifier.copyEncoderFrom(other)).code).toBe('CHECKPOINT_MISMATCH');
      tf.dispose([a, b, ...Object.values(x)]);
      for (const m of [mlm, classifier, other]) m.dispose();
    });

    it('matches central finite differences for the gradient of a projection kernel', () => {
      for (const task of tasks) {
        const model = createBertModel({ config: tiny, task, seed: 21 });
        const x = inputs();
        const y = targets(task);
        const parameter = model.parameters()[0]!; // layer_0/attention/query/kernel
        const f = () => tf.tidy(() => model.loss(model.forward(x, { training: false }), { x, y }));
        const { grads } = tf.variableGrads(f, [parameter.weight]);
        const gradient = grads[parameter.weight.name]!.dataSync();
        const weights = parameter.weight.dataSync().slice();
        const step = 1e-2;
        for (const index of [0, 5, 11, 15]) {
          const shifted = (delta: number) => {
            const values = weights.slice();
            values[index]! += delta;
            tf.tidy(() => parameter.weight.assign(tf.tensor(values, parameter.weight.shape)));
            return f().dataSync()[0]!;
          };
          const numeric = (shifted(step) - shifted(-step)) / (2 * step);
          // float32 central differences with h = 1e-2: truncation O(h²) ≈ 1e-4, rounding ≈ 1e-7/h = 1e-5.
          expect(Math.abs(numeric - gradient[index]!)).toBeLessThan(5e-4 + 1e-2 * Math.abs(gradient[index]!));
        }
        tf.tidy(() => parameter.weight.assign(tf.tensor(weights, parameter.weight.shape)));
        tf.dispose([...Object.values(grads), ...Object.values(x), [y].flat()].flat());
        model.dispose();
      }
    });
  });
}

describe('wasm against cpu', () => {
  afterAll(async () => {
    await setBackend('cpu');
  });

  it('gives the same loss and gradients (within 1e-4) with dropout on', async () => {
    const results: Record<string, Array<{ loss: number; grads: Float32Array[] }>> = { cpu: [], wasm: [] };
    for (const backend of ['cpu', 'wasm'] as const) {
      await setBackend(backend);
      for (const task of tasks) {
        const model = createBertModel({ config: tiny, task, seed: 8 });
        const x = inputs();
        const y = targets(task);
        const { value, grads } = tf.variableGrads(
          () => model.loss(model.forward(x, { training: true }), { x, y }),
          model.trainableVariables().map((entry) => entry.variable),
        );
        results[backend]!.push({
          loss: value.dataSync()[0]!,
          grads: model
            .trainableVariables()
            .map((entry) => grads[entry.variable.name]!.dataSync() as Float32Array),
        });
        tf.dispose([value, ...Object.values(grads), ...Object.values(x), [y].flat()].flat());
        model.dispose();
      }
    }
    for (let t = 0; t < tasks.length; t += 1) {
      const cpu = results.cpu![t]!;
      const wasm = results.wasm![t]!;
      expect(Math.abs(cpu.loss - wasm.loss)).toBeLessThan(1e-4);
      expect(wasm.grads.length).toBe(cpu.grads.length);
      for (let g = 0; g < cpu.grads.length; g += 1) {
        for (let i = 0; i < cpu.grads[g]!.length; i += 1) {
          expect(Math.abs(cpu.grads[g]![i]! - wasm.grads[g]![i]!)).toBeLessThan(1e-4);
        }
      }
    }
  });
});

describe('in a Pruner on wasm', () => {
  beforeAll(async () => {
    await setBackend('wasm');
  });

  it('prunes to the target, keeps frozen embeddings fixed and leaks nothing over 10 steps', async () => {
    const model = createBertModel({ config: tiny, task: { type: 'classification', numLabels: 3 }, seed: 1 });
    const frozenBefore = model.frozenVariables().map((entry) => Array.from(entry.variable.dataSync()));
    const trainableBefore = Array.from(model.trainableVariables()[1]!.variable.dataSync());
    const pruner = new Pruner({
      model,
      scores: testLearnedScores(0),
      mask: testTopK,
      schedule: fixedSparsity(0.5),
      optimizers: { weights: adam({ learningRate: 1e-2 }), scores: sgd({ learningRate: 0.1 }) },
      seed: 3,
    });
    const batch = (step: number) =>
      tf.tidy(() => ({
        x: inputs(ids.map((sequence) => sequence.map((id) => (id + step) % 11))),
        y: tf.tensor1d([step % 3, (step + 1) % 3], 'int32'),
      }));
    await pruner.run({ data: batch, untilStep: 2 }); // warm-up allocations (optimizer slots, scores)
    const tensorsBefore = tf.memory().numTensors;
    await pruner.run({ data: batch, untilStep: 12 });
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    for (const parameter of model.parameters()) {
      const kept = Array.from(parameter.mask.dataSync()).reduce((a, b) => a + b, 0);
      expect(kept).toBe(parameter.size - Math.round(0.5 * parameter.size));
    }
    model.frozenVariables().forEach((entry, index) => {
      expect(Array.from(entry.variable.dataSync())).toEqual(frozenBefore[index]);
    });
    expect(Array.from(model.trainableVariables()[1]!.variable.dataSync())).not.toEqual(trainableBefore);
    pruner.dispose();
    model.dispose();
  });
});

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`masked projections in a Pruner on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('train to the same weights and scores through maskedDense as through dense(x, W ⊙ M, b)', async () => {
      const train = async (composed: boolean) => {
        const model = createBertModel({
          config: tiny,
          task: { type: 'classification', numLabels: 3 },
          seed: 2,
        });
        if (composed) {
          for (const parameter of model.parameters())
            (parameter as { maskedFactors?: unknown }).maskedFactors = undefined;
        }
        const pruner = new Pruner({
          model,
          scores: testLearnedScores(0.5),
          mask: testTopK,
          schedule: fixedSparsity(0.5),
          optimizers: { weights: sgd({ learningRate: 0.1 }), scores: sgd({ learningRate: 1 }) },
          seed: 3,
        });
        expect(model.parameters()[0]!.maskedFactors?.() === undefined).toBe(composed);
        const batch = (step: number) =>
          tf.tidy(() => ({
            x: inputs(ids.map((sequence) => sequence.map((id) => (id + step) % 11))),
            y: tf.tensor1d([step % 3, (step + 1) % 3], 'int32'),
          }));
        await pruner.run({ data: batch, untilStep: 3 });
        const state = pruner.exportState();
        const values = [
          ...model.variables().map((entry) => entry.variable.dataSync() as Float32Array),
          ...Object.keys(state.tensors)
            .sort()
            .map((key) => state.tensors[key]!.dataSync() as Float32Array),
        ];
        tf.dispose(Object.values(state.tensors));
        pruner.dispose();
        model.dispose();
        return values;
      };
      const [fused, composed] = [await train(false), await train(true)];
      expect(fused.length).toBe(composed.length);
      // Same products on both paths, summed in another order: 1e-5 relative to the largest value.
      let largest = 0;
      let difference = 0;
      for (const [index, values] of composed.entries()) {
        for (let k = 0; k < values.length; k += 1) {
          largest = Math.max(largest, Math.abs(values[k]!));
          difference = Math.max(difference, Math.abs(values[k]! - fused[index]![k]!));
        }
      }
      expect(difference).toBeLessThan(1e-5 * largest);
    });
  });
}

describe('bad input', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it('rejects bad configs and tasks with INVALID_ARGUMENT', () => {
    const bad: Array<Partial<EncoderConfig>> = [
      { numHeads: 3 },
      { hiddenSize: 0 },
      { numLayers: 1.5 },
      { vocabSize: -1 },
      { hiddenDropout: 1 },
      { attentionDropout: -0.1 },
      { layerNormEpsilon: 0 },
      { hiddenActivation: 'relu' as never },
    ];
    for (const change of bad) {
      const error = errorOf(() =>
        createBertModel({ config: { ...tiny, ...change }, task: { type: 'span' } }),
      );
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toMatch(new RegExp(Object.keys(change)[0]!));
    }
    expect(
      errorOf(() => createBertModel({ config: tiny, task: { type: 'classification', numLabels: 0 } })).code,
    ).toBe('INVALID_ARGUMENT');
    expect(errorOf(() => createBertModel({ config: tiny, task: { type: 'ner' } as never })).code).toBe(
      'INVALID_ARGUMENT',
    );
  });

  it('rejects bad batches with a FinepruneError naming the problem', () => {
    const model = createBertModel({ config: tiny, task: { type: 'classification', numLabels: 3 } });
    const good = inputs();
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ['float ids', { ...good, inputIds: tf.tensor2d(ids) }, /int32/],
      ['too long', { inputIds: tf.zeros([1, 7], 'int32') }, /position embedding covers 6/],
      ['id ≥ vocab', { inputIds: tf.tensor2d([[1, 11]], undefined, 'int32') }, /outside \[0, 10\]/],
      ['negative id', { inputIds: tf.tensor2d([[-1, 2]], undefined, 'int32') }, /outside/],
      ['mask 2', { ...good, attentionMask: tf.fill([2, 5], 2, 'int32') }, /attentionMask/],
      ['type shape', { ...good, tokenTypeIds: tf.zeros([2, 4], 'int32') }, /tokenTypeIds has shape/],
      ['rank 1', { inputIds: tf.tensor1d([1, 2], 'int32') }, /\[batch, length\]/],
    ];
    for (const [label, x, pattern] of cases) {
      const error = errorOf(() => model.forward(x as never, { training: false }));
      expect(error.message, label).toMatch(pattern);
    }
    expect(errorOf(() => model.forward(good.inputIds as never, { training: false })).code).toBe(
      'INVALID_ARGUMENT',
    );
    expect(errorOf(() => model.forward(good, undefined as never)).message).toMatch(/training/);
    const logits = model.forward(good, { training: false });
    expect(errorOf(() => model.loss(logits, { x: good, y: tf.tensor1d([0, 3], 'int32') })).message).toMatch(
      /outside \[0, 2\]/,
    );
    expect(errorOf(() => model.loss(logits, { x: good, y: tf.tensor1d([0, 1]) })).message).toMatch(/int32/);
    expect(errorOf(() => model.loss(logits, { x: good, y: tf.tensor1d([0], 'int32') })).code).toBe(
      'SHAPE_MISMATCH',
    );
    model.dispose();
    expect(errorOf(() => model.forward(good, { training: false })).code).toBe('DISPOSED');
  });

  it('checks a reused id tensor again against a narrower range (values are read once per range)', () => {
    const wide = createBertModel({ config: tiny, task: { type: 'classification', numLabels: 3 } });
    const narrow = createBertModel({
      config: { ...tiny, vocabSize: 6 },
      task: { type: 'classification', numLabels: 3 },
    });
    const x = { inputIds: tf.tensor2d([[1, 9]], undefined, 'int32') };
    tf.dispose(wide.forward(x, { training: false })); // 9 is inside [0, 10]
    tf.dispose(wide.forward(x, { training: false })); // the same tensor again: still accepted
    expect(errorOf(() => narrow.forward(x, { training: false })).message).toMatch(
      /holds 9 .* outside \[0, 5\]/,
    );
    tf.dispose(x.inputIds);
    wide.dispose();
    narrow.dispose();
  });

  it('rejects mlm targets that do not fit', () => {
    const model = createBertModel({ config: tiny, task: { type: 'mlm', maxPredictions: 2 } });
    const x = inputs();
    const hidden = model.forward(x, { training: false });
    const positions = tf.tensor2d(
      [
        [1, 5],
        [0, 0],
      ],
      undefined,
      'int32',
    );
    const okIds = tf.tensor2d(
      [
        [1, 1],
        [1, 1],
      ],
      undefined,
      'int32',
    );
    const weights = tf.ones([2, 2]);
    expect(errorOf(() => model.loss(hidden, { x, y: [positions, okIds, weights] })).message).toMatch(
      /maskedPositions holds 5/,
    );
    const three = tf.zeros([2, 3], 'int32');
    expect(
      errorOf(() => model.loss(hidden, { x, y: [three, tf.zeros([2, 3], 'int32'), tf.ones([2, 3])] }))
        .message,
    ).toMatch(/at most 2/);
    expect(
      errorOf(() => model.loss(hidden, { x, y: [okIds, okIds, tf.ones([2, 2], 'int32')] })).message,
    ).toMatch(/maskedWeights must be float32/);
    expect(errorOf(() => model.loss(hidden, { x, y: okIds })).message).toMatch(/maskedPositions, maskedIds/);
    model.dispose();
  });
});

describe('Hugging Face config', () => {
  it('reads bert-base-uncased’s config.json and writes it back', () => {
    const json = {
      architectures: ['BertForMaskedLM'],
      attention_probs_dropout_prob: 0.1,
      gradient_checkpointing: false,
      hidden_act: 'gelu',
      hidden_dropout_prob: 0.1,
      hidden_size: 768,
      initializer_range: 0.02,
      intermediate_size: 3072,
      layer_norm_eps: 1e-12,
      max_position_embeddings: 512,
      model_type: 'bert',
      num_attention_heads: 12,
      num_hidden_layers: 12,
      pad_token_id: 0,
      position_embedding_type: 'absolute',
      transformers_version: '4.6.0.dev0',
      type_vocab_size: 2,
      use_cache: true,
      vocab_size: 30522,
    };
    const config = configFromHuggingFace(json);
    expect(config).toEqual(bertBaseUncasedConfig);
    const back = configToHuggingFace(config);
    for (const [key, value] of Object.entries(back)) expect(json[key as keyof typeof json]).toEqual(value);
    expect(configFromHuggingFace({ ...json, hidden_act: 'gelu_new' }).hiddenActivation).toBe('gelu_tanh');
    expect(configToHuggingFace({ ...config, hiddenActivation: 'gelu_tanh' }).hidden_act).toBe('gelu_new');
  });

  it('rejects configs it cannot honour', () => {
    const base = {
      vocab_size: 10,
      hidden_size: 4,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      intermediate_size: 8,
    };
    expect(configFromHuggingFace(base).maxPositions).toBe(512);
    expect(errorOf(() => configFromHuggingFace({ ...base, hidden_act: 'relu' })).message).toMatch(
      /hidden_act/,
    );
    expect(errorOf(() => configFromHuggingFace({ ...base, model_type: 'roberta' })).message).toMatch(
      /roberta/,
    );
    expect(errorOf(() => configFromHuggingFace({ ...base, vocab_size: undefined })).message).toMatch(
      /vocab_size/,
    );
    expect(
      errorOf(() => configFromHuggingFace({ ...base, position_embedding_type: 'relative_key' })).message,
    ).toMatch(/absolute/);
    expect(errorOf(() => configFromHuggingFace({ ...base, num_attention_heads: 3 })).code).toBe(
      'INVALID_ARGUMENT',
    );
  });
});
