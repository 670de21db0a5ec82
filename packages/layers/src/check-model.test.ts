import * as tf from '@tensorflow/tfjs-core';
import { loadGraphModelSync } from '@tensorflow/tfjs-converter';
import * as tfl from '@tensorflow/tfjs-layers';
import { errorOf } from '@fineprune/core/testing';
import { setBackend } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { fromLayersModel } from './from-layers-model';
import { mlp } from './test-support';

/** A real TF.js graph model (what tf.loadGraphModel returns): y = Identity(x), x float32 [−1, 2]. */
function identityGraph() {
  return loadGraphModelSync({
    load: () => ({
      format: 'graph-model',
      modelTopology: {
        node: [
          {
            name: 'x',
            op: 'Placeholder',
            attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: { dim: [{ size: '-1' }, { size: '2' }] } } },
          },
          { name: 'y', op: 'Identity', input: ['x'], attr: { T: { type: 'DT_FLOAT' } } },
        ],
        versions: { producer: 1 },
      },
      weightSpecs: [],
      weightData: new ArrayBuffer(0),
    }),
  });
}

describe('fromLayersModel() refuses what it cannot wrap', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it('a graph model: UNSUPPORTED_MODEL, saying why and how to get a layers model', () => {
    const graph = identityGraph();
    const y = graph.predict(tf.tensor2d([[1, 2]])) as tf.Tensor; // it is a working graph model
    expect(Array.from(y.dataSync())).toEqual([1, 2]);
    y.dispose();
    const error = errorOf(() => fromLayersModel(graph as unknown as tfl.LayersModel));
    expect(error.code).toBe('UNSUPPORTED_MODEL');
    expect(error.message).toContain('tf.GraphModel');
    expect(error.fix).toContain(
      'tensorflowjs_converter --input_format keras --output_format tfjs_layers_model',
    );
    expect(error.details).toEqual({ received: 'GraphModel' });
    graph.dispose();
  });

  it('a promise, a path, a single layer, a wrapped model, a tensor, undefined, a plain object', () => {
    const model = mlp(3);
    const prunable = fromLayersModel(model);
    const tensor = tf.zeros([2]);
    const cases: Array<[unknown, string, string]> = [
      [Promise.resolve(model), 'Promise', 'await tf.loadLayersModel'],
      ['./models/mlp/model.json', 'string', 'tf.loadLayersModel(fileSystem(directory))'],
      [tfl.layers.dense({ units: 2 }), 'Layer', 'tf.sequential({ layers: [layer] })'],
      [prunable, 'PrunableModel', 'prunable.model'],
      [tensor, 'a Tensor', 'tf.sequential()'],
      [undefined, 'undefined', 'tf.loadLayersModel'],
      [{ weights: [] }, 'a plain object', 'tf.model()'],
    ];
    for (const [value, received, fix] of cases) {
      const error = errorOf(() => fromLayersModel(value as tfl.LayersModel));
      expect(error.code, received).toBe('UNSUPPORTED_MODEL');
      expect(error.details?.received, received).toBe(received);
      expect(error.fix, received).toContain(fix);
    }
    tensor.dispose();
    prunable.unwrap();
    model.dispose();
  });

  it('a model without a loss wraps, and says to pass one when a loss is asked for', () => {
    const model = mlp(4);
    const prunable = fromLayersModel(model);
    const batch = { x: tf.zeros([1, 8]), y: tf.zeros([1]) };
    const outputs = prunable.forward(batch.x, { training: false }) as tf.Tensor;
    const error = errorOf(() => prunable.loss(outputs, batch));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain('wrapped without a loss');
    expect(error.fix).toContain("loss: 'sparseCategoricalCrossentropy'");
    tf.dispose([outputs, batch.x, batch.y]);
    prunable.unwrap();
    model.dispose();
  });
});
