import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import './register-gradients';
import { setBackend } from './backend';
import { FinepruneError } from './errors';
import { registerWasmTrainingKernels, wasmTrainingKernelNames } from './wasm-kernels';

describe('wasm training kernels', () => {
  it('are registered for wasm by setBackend, idempotently', async () => {
    await setBackend('wasm');
    for (const name of wasmTrainingKernelNames()) expect(tf.getKernel(name, 'wasm')).toBeDefined();
    expect(registerWasmTrainingKernels()).toEqual([]);
    expect(wasmTrainingKernelNames()).toEqual([
      'UnsortedSegmentSum',
      'Conv2DBackpropFilter',
      'DepthwiseConv2dNativeBackpropInput',
      'DepthwiseConv2dNativeBackpropFilter',
      'MaxPoolGrad',
      'Identity',
    ]);
  });

  it('clone without copying on wasm: the clone shares the heap data and outlives the original', async () => {
    await setBackend('wasm');
    const heap = tf.backend() as unknown as { dataIdMap: { get(id: unknown): { memoryOffset: number } } };
    const original = tf.tensor2d([1.5, -2, 3, 4e-7], [2, 2]);
    const copy = tf.clone(original);
    expect(heap.dataIdMap.get(copy.dataId)!.memoryOffset).toBe(
      heap.dataIdMap.get(original.dataId)!.memoryOffset,
    );
    original.dispose();
    expect(Array.from(await copy.data())).toEqual(Array.from(new Float32Array([1.5, -2, 3, 4e-7])));
    // A value saved by customGrad for the backward pass is a clone too; its gradient is unchanged.
    const x = tf.tensor1d([2, -3]);
    const square = tf.customGrad((input, save) => {
      (save as tf.GradSaveFunc)([input as tf.Tensor]);
      return {
        value: tf.square(input as tf.Tensor),
        gradFunc: (dy, [saved]) => tf.mul(dy, tf.mul(saved!, 2)),
      };
    });
    const gradient = tf.grad((input: tf.Tensor) => tf.sum(square(input) as tf.Tensor))(x);
    expect(Array.from(await gradient.data())).toEqual([4, -6]);
    tf.dispose([copy, x, gradient]);
  });

  it('compute a known embedding gradient on wasm', async () => {
    await setBackend('wasm');
    const table = tf.variable(tf.zeros([4, 2]));
    const ids = tf.tensor1d([3, 1, 3], 'int32');
    const { grads } = tf.variableGrads(() => tf.sum(tf.gather(table, ids)), [table]);
    expect(Array.from(await grads[table.name]!.data())).toEqual([0, 0, 1, 1, 0, 0, 2, 2]);
    tf.dispose([table, ids, grads[table.name]!]);
  });

  it('drop out-of-range segment ids as cpu does', async () => {
    const run = async () => {
      const x = tf.tensor2d([1.5, 2, 10, 20, 100, 200, 7, 8], [4, 2]);
      const ids = tf.tensor1d([1, -1, 0, 5], 'int32');
      const sums = tf.unsortedSegmentSum(x, ids, 2);
      const result = Array.from(await sums.data());
      tf.dispose([x, ids, sums]);
      return result;
    };
    await setBackend('cpu');
    const expected = await run();
    await setBackend('wasm');
    expect(await run()).toEqual(expected);
    expect(expected).toEqual([100, 200, 1.5, 2]);
  });

  it('compute Conv2DBackpropFilter for NCHW inputs as cpu does', async () => {
    const attrs = { strides: 2, pad: 'same', dataFormat: 'NCHW', filterShape: [3, 3, 2, 3] };
    const run = async () => {
      const x = tf.tensor4d(
        Float32Array.from({ length: 2 * 2 * 5 * 6 }, (_, i) => Math.sin(i)),
        [2, 2, 5, 6],
      );
      const dy = tf.tensor4d(
        Float32Array.from({ length: 2 * 3 * 3 * 3 }, (_, i) => Math.cos(i)),
        [2, 3, 3, 3],
      );
      const filter = tf
        .engine()
        .runKernel('Conv2DBackpropFilter', { x, dy }, attrs as unknown as tf.NamedAttrMap);
      const result = Array.from(await (filter as tf.Tensor).data());
      tf.dispose([x, dy, filter as tf.Tensor]);
      return result;
    };
    await setBackend('cpu');
    const expected = await run();
    await setBackend('wasm');
    const actual = await run();
    expect(actual.length).toBe(54);
    for (const [index, value] of actual.entries()) expect(value).toBeCloseTo(expected[index]!, 5);
  });

  it('route a max-pool gradient to the first maximum of each window on wasm', async () => {
    await setBackend('wasm');
    const x = tf.variable(tf.tensor4d([1, 5, 5, 2, 0, 5, 9, 9], [1, 2, 4, 1]));
    const { grads } = tf.variableGrads(() => tf.sum(tf.maxPool(x as tf.Tensor4D, 2, 2, 'valid')), [x]);
    expect(Array.from(await grads[x.name]!.data())).toEqual([0, 1, 0, 0, 0, 0, 1, 0]);
    tf.dispose([x, grads[x.name]!]);
  });

  it('reject dilated depthwise gradients with a FinepruneError', async () => {
    await setBackend('wasm');
    const dy = tf.ones([1, 2, 2, 1]);
    const filter = tf.ones([2, 2, 1, 1]);
    let error: unknown;
    try {
      tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter }, {
        strides: 1,
        dilations: 2,
        pad: 'valid',
        inputShape: [1, 4, 4, 1],
      } as unknown as tf.NamedAttrMap);
    } catch (caught) {
      error = caught;
    }
    expect(FinepruneError.is(error)).toBe(true);
    expect((error as FinepruneError).code).toBe('INVALID_ARGUMENT');
    tf.dispose([dy, filter]);
  });
});
