import * as tf from '@tensorflow/tfjs-core';
import { countTensors, FinepruneError, setBackend, withLeakGuard } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeFloat32 } from './decode';
import { encodeSafetensors } from './encode';
import { readSafetensors } from './read';
import { safetensorsFromTensors, tensorsFromSafetensors } from './tfjs';

async function rejection(promise: Promise<unknown>): Promise<FinepruneError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!FinepruneError.is(error)) throw new Error(`expected a FinepruneError, got ${String(error)}`);
  return error;
}

function errorOf(fn: () => unknown): FinepruneError {
  try {
    fn();
  } catch (error) {
    if (FinepruneError.is(error)) return error;
    throw error;
  }
  throw new Error('expected a FinepruneError, but nothing was thrown');
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`TF.js glue on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('saves float32, int32 and bool tensors and loads them back with their shapes and dtypes', async () => {
      await withLeakGuard(async () => {
        const kernel = tf.tensor2d([
          [1.5, -2, 0.1],
          [3, 1e-3, -0],
        ]);
        const ids = tf.tensor1d([-7, 0, 2147483647], 'int32');
        const flags = tf.tensor([true, false, true, true], [2, 2], 'bool');
        const scalar = tf.scalar(0.25);
        const bytes = await safetensorsFromTensors(
          { 'fc.kernel': kernel, ids, flags, scalar },
          { metadata: { format: 'tfjs' } },
        );
        const file = readSafetensors(bytes);
        expect(file.metadata).toEqual({ format: 'tfjs' });
        expect(file.tensors.get('fc.kernel')!.dtype).toBe('F32');
        expect(file.tensors.get('ids')!.dtype).toBe('I32');
        expect(file.tensors.get('flags')!.dtype).toBe('BOOL');
        const loaded = tensorsFromSafetensors(file);
        expect(Object.keys(loaded).sort()).toEqual(['fc.kernel', 'flags', 'ids', 'scalar']);
        expect(loaded['fc.kernel']!.dtype).toBe('float32');
        expect(loaded['fc.kernel']!.shape).toEqual([2, 3]);
        // F32 is stored bit for bit.
        expect(await loaded['fc.kernel']!.data()).toEqual(await kernel.data());
        expect(loaded.ids!.dtype).toBe('int32');
        expect(Array.from(await loaded.ids!.data())).toEqual([-7, 0, 2147483647]);
        expect(loaded.flags!.dtype).toBe('bool');
        expect(loaded.flags!.shape).toEqual([2, 2]);
        expect(Array.from(await loaded.flags!.data())).toEqual([1, 0, 1, 1]);
        expect(loaded.scalar!.shape).toEqual([]);
        expect(Array.from(await loaded.scalar!.data())).toEqual([0.25]);
        tf.dispose([kernel, ids, flags, scalar, ...Object.values(loaded)]);
      });
    });

    it('stores float32 as F16 or BF16 on request, within their rounding', async () => {
      const values = [1, -2.5, 0.1, 1000.7, -3e-3];
      const x = tf.tensor1d(values);
      const before = countTensors();
      for (const [dtype, unit] of [
        ['F16', 2 ** -11],
        ['BF16', 2 ** -8],
      ] as const) {
        const file = readSafetensors(await safetensorsFromTensors({ x }, { dtype }));
        expect(file.tensors.get('x')!.dtype).toBe(dtype);
        const { x: back } = tensorsFromSafetensors(file);
        const data = await back!.data();
        // Round to nearest: relative error ≤ 2^-11 (float16) and 2^-8 (bfloat16).
        values.forEach((value, index) => {
          expect(Math.abs(data[index]! - value)).toBeLessThanOrEqual(Math.abs(value) * unit);
        });
        expect(Array.from(data)).toEqual(Array.from(decodeFloat32(file.tensors.get('x')!)));
        back!.dispose();
      }
      expect(countTensors()).toBe(before);
      x.dispose();
    });

    it('loads a subset by name and refuses unknown names', async () => {
      const file = readSafetensors(
        encodeSafetensors({
          a: { dtype: 'F32', shape: [1], data: [1] },
          b: { dtype: 'I64', shape: [1], data: [5] },
          c: { dtype: 'U8', shape: [2], data: [1, 2] },
        }),
      );
      await withLeakGuard(async () => {
        const subset = tensorsFromSafetensors(file, { names: ['b'] });
        expect(Object.keys(subset)).toEqual(['b']);
        expect(subset.b!.dtype).toBe('int32');
        expect(Array.from(await subset.b!.data())).toEqual([5]);
        subset.b!.dispose();
      });
      const error = errorOf(() => tensorsFromSafetensors(file, { names: ['a', 'missing'] }));
      expect(error.code).toBe('CHECKPOINT_MISMATCH');
      expect(error.message).toMatch(/no tensor named "missing"; it has 3 tensors \(a, b, c\)/);
      expect(errorOf(() => tensorsFromSafetensors({} as never)).code).toBe('INVALID_ARGUMENT');
    });

    it('disposes what it made when a later tensor fails to load', async () => {
      const file = readSafetensors(
        encodeSafetensors({
          a: { dtype: 'F32', shape: [2], data: [1, 2] },
          z: { dtype: 'I64', shape: [1], data: [2 ** 40] },
        }),
      );
      const before = countTensors();
      const error = errorOf(() => tensorsFromSafetensors(file, { names: ['a', 'z'] }));
      expect(error.code).toBe('INVALID_DATA');
      expect(error.message).toMatch(/"z" \(I64\) holds 1099511627776 at index 0/);
      expect(countTensors()).toBe(before);
    });

    it('refuses unsupported, disposed or non-tensor inputs', async () => {
      const text = tf.tensor(['a', 'b']);
      expect((await rejection(safetensorsFromTensors({ text }))).message).toMatch(/"text" has dtype string/);
      text.dispose();
      const gone = tf.ones([2]);
      gone.dispose();
      expect((await rejection(safetensorsFromTensors({ gone }))).code).toBe('DISPOSED');
      expect((await rejection(safetensorsFromTensors({ x: [1, 2] as never }))).code).toBe('INVALID_ARGUMENT');
      const x = tf.ones([1]);
      expect((await rejection(safetensorsFromTensors({ x }, { dtype: 'F64' as never }))).code).toBe(
        'INVALID_ARGUMENT',
      );
      expect((await rejection(safetensorsFromTensors({ __metadata__: x }))).code).toBe('INVALID_ARGUMENT');
      x.dispose();
    });
  });
}
