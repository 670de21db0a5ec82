import { setBackend } from '@fineprune/tensor';
import { dense } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createBertModel } from './model';
import type { ProjectionFunction } from './ops';
import { tinyEncoderConfig } from './test-support';

const tiny = tinyEncoderConfig;
const task = { type: 'classification', numLabels: 3 } as const;
const x = () => ({
  inputIds: tf.tensor2d([[2, 5, 7, 9, 0]], undefined, 'int32'),
  attentionMask: tf.tensor2d([[1, 1, 1, 1, 0]], undefined, 'int32'),
});

beforeAll(async () => {
  await setBackend('cpu');
});

describe('createBertModel({ projections }): prunable projections computed by the caller at inference', () => {
  it('gives the same logits when the functions compute dense(x, W ⊙ M, b), and others when they do not', () => {
    const before = tf.memory().numTensors;
    const reference = createBertModel({ config: tiny, task, seed: 3 });
    // Prune half of layer 0's query kernel through its mask, as a pruned model has it.
    const query = reference
      .parameters()
      .find((parameter) => parameter.name === 'layer_0/attention/query/kernel')!;
    const halfMask = tf.tidy(() =>
      tf.cast(tf.greater(tf.randomUniform(query.mask.shape, 0, 1, 'float32', 5), 0.5), 'float32'),
    );
    query.mask.assign(halfMask);
    halfMask.dispose();
    const weights = new Map(reference.variables().map((entry) => [entry.name, entry.variable]));
    const calls: string[] = [];
    const projections = new Map<string, ProjectionFunction>(
      reference.parameters().map((parameter) => {
        const bias = weights.get(parameter.name.replace(/kernel$/, 'bias'))! as unknown as tf.Tensor1D;
        return [
          parameter.name,
          (hidden: tf.Tensor2D) => {
            calls.push(parameter.name);
            return dense(hidden, parameter.effectiveWeight() as tf.Tensor2D, bias);
          },
        ];
      }),
    );
    const viaFunctions = createBertModel({ config: tiny, task, seed: 3, projections });
    viaFunctions
      .parameters()
      .find((parameter) => parameter.name === query.name)!
      .mask.assign(query.mask);
    // The functions read the reference model's weights; viaFunctions' own (same seed) equal them.
    const input = x();
    const expected = reference.forward(input, { training: false }) as tf.Tensor;
    const actual = viaFunctions.forward(input, { training: false }) as tf.Tensor;
    expect(actual.dataSync()).toEqual(expected.dataSync());
    expect(calls.length).toBe(12); // six projections × two layers
    // A function that changes its projection changes the logits: the model really calls it.
    const shifted = createBertModel({
      config: tiny,
      task,
      seed: 3,
      projections: new Map(
        [...projections].map(([name, project]) => [
          name,
          (h: tf.Tensor2D) => tf.add(project(h), 1) as tf.Tensor2D,
        ]),
      ),
    });
    const moved = shifted.forward(input, { training: false }) as tf.Tensor;
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(moved, expected))).dataSync()[0])).toBeGreaterThan(1e-3);
    // Training ignores them (gradients flow to the model's own variables).
    calls.length = 0;
    tf.dispose(shifted.forward(input, { training: true }));
    expect(calls).toEqual([]);
    tf.dispose([expected, actual, moved, input.inputIds, input.attentionMask]);
    for (const model of [reference, viaFunctions, shifted]) model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses a name that is not a prunable projection', () => {
    expect(() =>
      createBertModel({
        config: tiny,
        task,
        projections: new Map([['pooler/kernel', (h: tf.Tensor2D) => h]]),
      }),
    ).toThrow(/INVALID_ARGUMENT.*"pooler\/kernel"/);
  });
});
