import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { FinepruneError } from '@fineprune/core';
import { setBackend } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { fromLayersModel } from './from-layers-model';
import type { PrunableLayer } from './prunable-weights';
import { MIXED_SKIPPED, mixedModel, skipped } from './test-support';

/** Two weights, `kernel` and `gate`; the layer declares only `kernel` prunable, tfmot-style. */
class GatedScale extends tfl.layers.Layer implements PrunableLayer {
  static className = 'TestGatedScale';
  readonly prunableKind = 'gated-scale';
  private kernel: tfl.LayerVariable | null = null;
  private gate: tfl.LayerVariable | null = null;
  foreign: tfl.LayerVariable | null = null;
  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = inputShape as tfl.Shape;
    const units = shape[shape.length - 1]!;
    this.kernel = this.addWeight('kernel', [units], 'float32', tfl.initializers.ones());
    this.gate = this.addWeight('gate', [units], 'float32', tfl.initializers.ones());
    this.built = true;
  }
  getPrunableWeights(): tfl.LayerVariable[] {
    return this.foreign ? [this.foreign] : [this.kernel!];
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const input = Array.isArray(inputs) ? inputs[0]! : inputs;
    return tf.mul(tf.mul(input, this.kernel!.read()), this.gate!.read());
  }
}
tf.serialization.registerClass(GatedScale);

describe('the adapter reports what it leaves dense', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it('lists batch-norm, biases and an unsupported weighted layer, in layer order', () => {
    const model = mixedModel();
    const prunable = fromLayersModel(model);
    expect(prunable.parameters().map((parameter) => parameter.name)).toEqual([
      'conv/kernel',
      'depthwise/depthwiseKernel',
      'logits/kernel',
    ]);
    expect(prunable.skippedWeights()).toEqual(MIXED_SKIPPED);
    // Every weight of the model is either a parameter or skipped, none twice.
    const sizes = [
      ...prunable.parameters().map((parameter) => parameter.size),
      ...prunable.skippedWeights().map((weight) => weight.size),
    ];
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(model.countParams());
    prunable.unwrap();
    model.dispose();
  });

  it('marks prunable weights left out by include / exclude as excluded', () => {
    const model = mixedModel();
    const prunable = fromLayersModel(model, { exclude: ['logits', /depthwise/] });
    expect(prunable.parameters().map((parameter) => parameter.name)).toEqual(['conv/kernel']);
    const excluded = prunable.skippedWeights().filter((weight) => weight.reason === 'excluded');
    expect(excluded).toEqual([
      skipped('depthwise/depthwiseKernel', 'DepthwiseConv2D', [3, 3, 4, 1], 'excluded'),
      skipped('logits/kernel', 'Dense', [6, 3], 'excluded'),
    ]);
    prunable.unwrap();
    model.dispose();
  });

  it('prunes the weights a layer declares with getPrunableWeights(), with no registration', async () => {
    const layer = new GatedScale({ name: 'gated', inputShape: [4] });
    const model = tfl.sequential({ layers: [layer] });
    const prunable = fromLayersModel(model);
    expect(prunable.parameters().map((parameter) => [parameter.name, parameter.kind])).toEqual([
      ['gated/kernel', 'gated-scale'],
    ]);
    expect(prunable.skippedWeights()).toEqual([
      skipped('gated/gate', 'TestGatedScale', [4], 'weight-not-prunable'),
    ]);
    prunable.parameter('gated/kernel').mask.assign(tf.tensor1d([1, 0, 0, 1]));
    const y = model.predict(tf.ones([1, 4])) as tf.Tensor;
    expect(Array.from(await y.data())).toEqual([1, 0, 0, 1]);
    tf.dispose(y);
    prunable.unwrap();

    // A declared weight that belongs to another layer is refused.
    const other = mixedModel();
    layer.foreign = other.getLayer('conv').weights[0]!;
    try {
      fromLayersModel(model);
      expect.unreachable();
    } catch (error) {
      expect(FinepruneError.is(error) && error.code).toBe('INVALID_ARGUMENT');
      expect((error as FinepruneError).message).toContain('getPrunableWeights() of layer "gated"');
    }
    model.dispose();
    other.dispose();
  });
});
