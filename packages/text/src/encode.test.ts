import type { Batch } from '@fineprune/core';
import { errorOf } from '@fineprune/core/testing';
import { setBackend, withLeakGuard } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { batchesFromEncoded, disposeBatch, encodeExamples } from './encode';
import type { TextExample } from './tasks';
import { createBertTokenizer } from './tokenizer';

const tokenizer = createBertTokenizer();
const words = [
  'alpha',
  'beta',
  'gamma',
  'delta',
  'epsilon',
  'zeta',
  'eta',
  'theta',
  'iota',
  'kappa',
  'lambda',
];
// Eleven examples of growing length; the last ones exceed maxLength 6 and are truncated.
const examples: TextExample[] = words.map((_, i) => ({
  text: words.slice(0, i + 1).join(' '),
  label: i % 3,
  source: `doc${i}`,
}));

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`encodeExamples on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('makes core Batches of int32 [B, L] inputs and int32 [B] labels equal to the tokenizer encoding', async () => {
      await withLeakGuard(async () => {
        const source = encodeExamples(tokenizer, examples, { maxLength: 6, batchSize: 4, seed: 1 });
        expect([source.size, source.batchesPerEpoch, source.classes]).toEqual([11, 2, 3]);
        // Texts of 5 or more words need 7+ tokens with [CLS]/[SEP]: 7 of the 11 are truncated.
        expect(source.truncated).toBe(7);
        const batch: Batch = source.batch(0);
        const { x, y } = source.batch(0);
        expect(x.inputIds.shape).toEqual([4, 6]);
        expect([x.inputIds.dtype, x.tokenTypeIds.dtype, x.attentionMask.dtype, y.dtype]).toEqual([
          'int32',
          'int32',
          'int32',
          'int32',
        ]);
        const rows = source.indices(0);
        const ids = (await x.inputIds.array()) as number[][];
        const mask = (await x.attentionMask.array()) as number[][];
        const labels = Array.from(await y.data());
        rows.forEach((example, r) => {
          const expected = tokenizer.encode(examples[example]!.text, { maxLength: 6, padToMaxLength: true });
          expect(ids[r]).toEqual(Array.from(expected.ids));
          expect(mask[r]).toEqual(Array.from(expected.attentionMask));
          expect(labels[r]).toBe(examples[example]!.label);
        });
        expect(Array.from(await x.tokenTypeIds.data()).every((v) => v === 0)).toBe(true);
        disposeBatch(batch);
        disposeBatch({ x, y });
      });
    });

    it('pads short texts with [PAD] and attention 0', async () => {
      const source = encodeExamples(tokenizer, examples.slice(0, 1), {
        maxLength: 5,
        batchSize: 1,
        shuffle: false,
      });
      const batch = source.batch(0);
      // "alpha" is one wordpiece: [CLS] alpha [SEP] [PAD] [PAD].
      expect(Array.from(await batch.x.inputIds.data())).toEqual([101, tokenizer.idOf('alpha')!, 102, 0, 0]);
      expect(Array.from(await batch.x.attentionMask.data())).toEqual([1, 1, 1, 0, 0]);
      disposeBatch(batch);
    });

    it('is a pure function of (seed, step): each epoch is a permutation, another source repeats it', () => {
      const a = encodeExamples(tokenizer, examples, {
        maxLength: 8,
        batchSize: 3,
        seed: 9,
        dropRemainder: false,
      });
      const b = encodeExamples(tokenizer, examples, {
        maxLength: 8,
        batchSize: 3,
        seed: 9,
        dropRemainder: false,
      });
      expect(a.batchesPerEpoch).toBe(4);
      for (const epoch of [0, 1, 2]) {
        const seen = Array.from({ length: 4 }, (_, i) => Array.from(a.indices(epoch * 4 + i))).flat();
        expect(seen.sort((p, q) => p - q)).toEqual(Array.from({ length: 11 }, (_, i) => i));
      }
      // Resume: a fresh source asked for a late step first gives the same examples.
      expect(Array.from(b.indices(9))).toEqual(Array.from(a.indices(9)));
      expect(Array.from(a.indices(0))).not.toEqual(Array.from(a.indices(4)));
      const other = encodeExamples(tokenizer, examples, { maxLength: 8, batchSize: 3, seed: 10 });
      expect(Array.from(other.permutation(0))).not.toEqual(Array.from(a.permutation(0)));
      const ordered = encodeExamples(tokenizer, examples, { maxLength: 8, batchSize: 3, shuffle: false });
      expect(Array.from(ordered.indices(1))).toEqual([3, 4, 5]);
    });

    it('gives every example once, in order, in evaluation batches (the last one short)', async () => {
      await withLeakGuard(async () => {
        const source = encodeExamples(tokenizer, examples, { maxLength: 8, batchSize: 4, seed: 0 });
        const labels: number[] = [];
        const sizes: number[] = [];
        for (const batch of source.evaluationBatches()) {
          sizes.push(batch.y.shape[0]);
          labels.push(...Array.from(await batch.y.data()));
          disposeBatch(batch);
        }
        expect(sizes).toEqual([4, 4, 3]);
        expect(labels).toEqual(examples.map((e) => e.label));
      });
    });

    it('leaks no tensor over many batches', () => {
      const source = encodeExamples(tokenizer, examples, { maxLength: 8, batchSize: 2, seed: 0 });
      const before = tf.memory().numTensors;
      for (let step = 0; step < 50; step++) disposeBatch(source.batch(step));
      expect(tf.memory().numTensors).toBe(before);
    });

    it('serves saved encodings as the same batches, without the tokenizer', async () => {
      const options = { maxLength: 6, batchSize: 3, seed: 7 };
      const source = encodeExamples(tokenizer, examples, options);
      const saved = source.encoded();
      expect(saved.inputIds.length).toBe(11 * 6);
      expect(saved.truncated).toBe(source.truncated);
      // A copy: changing it does not change the source.
      saved.labels[0] = 2;
      expect(source.labels[0]).toBe(0);
      saved.labels[0] = 0;
      const again = batchesFromEncoded(saved, options);
      expect([again.size, again.batchesPerEpoch, again.classes]).toEqual([11, 3, 3]);
      await withLeakGuard(async () => {
        for (const step of [0, 1, 2, 3, 10]) {
          const a = source.batch(step);
          const b = again.batch(step);
          expect(Array.from(await b.x.inputIds.data())).toEqual(Array.from(await a.x.inputIds.data()));
          expect(Array.from(await b.x.attentionMask.data())).toEqual(
            Array.from(await a.x.attentionMask.data()),
          );
          expect(Array.from(await b.x.tokenTypeIds.data())).toEqual(
            Array.from(await a.x.tokenTypeIds.data()),
          );
          expect(Array.from(await b.y.data())).toEqual(Array.from(await a.y.data()));
          disposeBatch(a);
          disposeBatch(b);
        }
      });
    });

    it('refuses encodings whose arrays disagree or hold impossible values', () => {
      const saved = encodeExamples(tokenizer, examples, { maxLength: 6, batchSize: 2 }).encoded();
      const codeOf = (patch: Record<string, unknown>, options = { batchSize: 2 }) =>
        errorOf(() => batchesFromEncoded({ ...saved, ...patch } as typeof saved, options)).code;
      expect(codeOf({ inputIds: saved.inputIds.subarray(1) })).toBe('INVALID_DATA');
      expect(
        codeOf({ attentionMask: Int32Array.from(saved.attentionMask, (v, i) => (i === 5 ? 2 : v)) }),
      ).toBe('INVALID_DATA');
      expect(codeOf({ inputIds: Int32Array.from(saved.inputIds, (v, i) => (i === 3 ? -4 : v)) })).toBe(
        'INVALID_DATA',
      );
      expect(codeOf({ labels: new Float32Array(11) })).toBe('INVALID_DATA');
      expect(codeOf({ maxLength: 1.5 })).toBe('INVALID_DATA');
      expect(codeOf({}, { batchSize: 2, maxLength: 8 } as never)).toBe('INVALID_DATA');
      expect(codeOf({}, { batchSize: 2, classes: 2 } as never)).toBe('INVALID_DATA');
      expect(codeOf({}, { batchSize: 0 })).toBe('INVALID_ARGUMENT');
    });

    it('rejects bad options and labels', () => {
      expect(errorOf(() => encodeExamples(tokenizer, [], { batchSize: 1 })).code).toBe('INVALID_ARGUMENT');
      expect(errorOf(() => encodeExamples(tokenizer, examples, { batchSize: 12 })).code).toBe(
        'INVALID_ARGUMENT',
      );
      expect(errorOf(() => encodeExamples(tokenizer, examples, { batchSize: 2, maxLength: 1 })).code).toBe(
        'INVALID_ARGUMENT',
      );
      expect(errorOf(() => encodeExamples(tokenizer, examples, { batchSize: 2, classes: 2 })).code).toBe(
        'INVALID_DATA',
      );
      const bad = [{ text: 'x', label: -1, source: 's' }];
      expect(errorOf(() => encodeExamples(tokenizer, bad, { batchSize: 1 })).code).toBe('INVALID_DATA');
      const source = encodeExamples(tokenizer, examples, { batchSize: 2 });
      expect(errorOf(() => source.batch(-1)).code).toBe('INVALID_ARGUMENT');
    });
  });
}
