import type { Batch } from '@fineprune/core';
import { errorOf } from '@fineprune/core/testing';
import { setBackend, withLeakGuard } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { vocabularyDocuments } from '../test/vocabulary-text';
import { disposeBatch } from './encode';
import { type MlmCorpus, mlmBatches, mlmCorpus } from './mlm';
import { createBertTokenizer } from './tokenizer';

const tokenizer = createBertTokenizer();
const id = (token: string) => tokenizer.idOf(token)!;

describe('mlmCorpus', () => {
  it('cuts one stream across documents into [CLS] … [SEP] sequences of L − 2 wordpieces', () => {
    // Stream: hello world | una ##ffa ##ble cafe | ok = 7 pieces; L = 5 → 3 pieces per sequence.
    const corpus = mlmCorpus(tokenizer, ['hello world', { text: 'unaffable cafe' }, 'ok'], {
      sequenceLength: 5,
      validationFraction: 0,
    });
    expect(corpus.wordpieces).toBe(7);
    expect(corpus.documents).toBe(3);
    expect(corpus.train.count).toBe(3);
    expect(corpus.validation.count).toBe(0);
    expect(Array.from(corpus.train.ids)).toEqual([
      ...[101, id('hello'), id('world'), id('una'), 102],
      ...[101, id('##ffa'), id('##ble'), id('cafe'), 102],
      ...[101, id('ok'), 102, 0, 0],
    ]);
    expect(Array.from(corpus.train.lengths)).toEqual([5, 5, 3]);
  });

  it('holds out a seeded share of the sequences', () => {
    const text = Array.from({ length: 400 }, (_, i) => `word${i % 7} the`).join(' ');
    const a = mlmCorpus(tokenizer, [text], { sequenceLength: 10, validationFraction: 0.02, seed: 1 });
    const b = mlmCorpus(tokenizer, [text], { sequenceLength: 10, validationFraction: 0.02, seed: 1 });
    const c = mlmCorpus(tokenizer, [text], { sequenceLength: 10, validationFraction: 0.02, seed: 2 });
    const count = a.train.count + a.validation.count;
    expect(count).toBe(Math.ceil(a.wordpieces / 8));
    expect(a.validation.count).toBe(Math.round(0.02 * count));
    expect(Array.from(b.validationIndices)).toEqual(Array.from(a.validationIndices));
    expect(Array.from(c.validationIndices)).not.toEqual(Array.from(a.validationIndices));
    // A tiny corpus still holds one sequence out.
    expect(mlmCorpus(tokenizer, ['a b c d e f'], { sequenceLength: 5 }).validation.count).toBe(1);
  });

  it('rejects bad options and empty corpora', () => {
    expect(errorOf(() => mlmCorpus(tokenizer, ['x'], { sequenceLength: 2 })).code).toBe('INVALID_ARGUMENT');
    expect(errorOf(() => mlmCorpus(tokenizer, ['x'], { validationFraction: 1 })).code).toBe(
      'INVALID_ARGUMENT',
    );
    expect(errorOf(() => mlmCorpus(tokenizer, ['', '  '])).code).toBe('INVALID_ARGUMENT');
    expect(errorOf(() => mlmCorpus(tokenizer, [{} as { text: string }])).code).toBe('INVALID_ARGUMENT');
  });
});

describe('mlmBatches masking statistics', () => {
  let corpus: MlmCorpus;
  beforeAll(() => {
    // 20 documents × 2,250 one-piece words = 45,000 wordpieces: ⌈45,000 / 126⌉ = 358 sequences of 128.
    corpus = mlmCorpus(tokenizer, vocabularyDocuments(tokenizer, 20, 2250), { sequenceLength: 128, seed: 0 });
    expect(corpus.wordpieces).toBe(45_000);
    expect(corpus.train.count + corpus.validation.count).toBe(358);
  });

  it('masks 80/10/10 and ≈15% of the real positions, never a special token', () => {
    const source = mlmBatches(corpus, { batchSize: 32, maskProbability: 0.15, maxPredictions: 20, seed: 4 });
    const L = 128;
    const P = 20;
    let masked = 0;
    let random = 0;
    let kept = 0;
    let predictions = 0;
    let candidates = 0;
    const positionsSeen = new Set<number>();
    for (let step = 0; step < 40; step++) {
      const batch = source.maskedArrays(step);
      batch.rows.forEach((row, r) => {
        const original = corpus.train.ids.subarray(row * L, (row + 1) * L);
        const length = corpus.train.lengths[row]!;
        let n = 0;
        for (let t = 0; t < length; t++) if (!tokenizer.isSpecialId(original[t]!)) n++;
        candidates += n;
        const chosen = new Set<number>();
        let real = 0;
        for (let p = 0; p < P; p++) {
          const weight = batch.maskedWeights[r * P + p]!;
          const position = batch.maskedPositions[r * P + p]!;
          if (weight === 0) {
            expect([position, batch.maskedIds[r * P + p]]).toEqual([0, 0]);
            continue;
          }
          real++;
          expect(weight).toBe(1);
          // Never [CLS] (0), [SEP] (length − 1) or padding.
          expect(position).toBeGreaterThan(0);
          expect(position).toBeLessThan(length - 1);
          expect(tokenizer.isSpecialId(batch.maskedIds[r * P + p]!)).toBe(false);
          expect(batch.maskedIds[r * P + p]).toBe(original[position]);
          chosen.add(position);
          positionsSeen.add(position);
          const input = batch.inputIds[r * L + position]!;
          if (input === 103) masked++;
          else if (input === original[position]) kept++;
          else {
            random++;
            expect(tokenizer.isSpecialId(input)).toBe(false);
          }
        }
        // k = min(P, max(1, round(0.15·n))) predictions, sorted positions, distinct.
        expect(real).toBe(Math.min(P, Math.max(1, Math.round(0.15 * n))));
        expect(chosen.size).toBe(real);
        predictions += real;
        // Unchosen positions are untouched.
        for (let t = 0; t < L; t++) {
          if (!chosen.has(t)) expect(batch.inputIds[r * L + t]).toBe(original[t]);
        }
        expect(Array.from(batch.attentionMask.subarray(r * L, (r + 1) * L))).toEqual(
          Array.from({ length: L }, (_, t) => (t < length ? 1 : 0)),
        );
      });
    }
    // 40 batches × 32 sequences × 19 predictions ≈ 24,300 draws. Binomial tolerance: 5 standard
    // deviations, 5·sqrt(p(1 − p)/N) (≈0.013 for p = 0.8, ≈0.010 for p = 0.1). A random token equal
    // to the original (probability 1/29,523) counts as "kept": far below the tolerance.
    const tolerance = (p: number) => 5 * Math.sqrt((p * (1 - p)) / predictions);
    expect(predictions).toBeGreaterThan(24_000);
    expect(Math.abs(masked / predictions - 0.8)).toBeLessThan(tolerance(0.8));
    expect(Math.abs(random / predictions - 0.1)).toBeLessThan(tolerance(0.1));
    expect(Math.abs(kept / predictions - 0.1)).toBeLessThan(tolerance(0.1));
    // Full sequences predict round(0.15·126) = 19 of 126 positions: 15.08%.
    expect(Math.abs(predictions / candidates - 0.15)).toBeLessThan(0.005);
    // Every position between [CLS] and [SEP] gets chosen sometimes (≈190 times each on average).
    expect(positionsSeen.size).toBe(126);
  });

  it('masks at least one position of a short sequence and pads the rest', () => {
    const small = mlmCorpus(tokenizer, ['hello world'], { sequenceLength: 8, validationFraction: 0 });
    const batch = mlmBatches(small, { batchSize: 1, seed: 0 }).maskedArrays(0);
    // n = 2 candidates → k = max(1, round(0.3)) = 1.
    expect(Array.from(batch.maskedWeights).reduce((s, w) => s + w, 0)).toBe(1);
    expect([1, 2]).toContain(batch.maskedPositions[0]);
    expect(Array.from(batch.maskedPositions.subarray(1))).toEqual(new Array(19).fill(0));
  });

  it('never chooses literal special tokens in the text', () => {
    const special = mlmCorpus(tokenizer, ['[MASK] [UNK] [CLS] [SEP] hello'], {
      sequenceLength: 12,
      validationFraction: 0,
    });
    for (let step = 0; step < 20; step++) {
      const batch = mlmBatches(special, { batchSize: 1, seed: step }).maskedArrays(0);
      // Stream: [CLS] [MASK] [UNK] [CLS] [SEP] hello [SEP]: only "hello" (position 5) is a candidate.
      expect(batch.maskedPositions[0]).toBe(5);
      expect(batch.maskedWeights[1]).toBe(0);
    }
  });
});

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`mlmBatches on ${backend}`, () => {
    let corpus: MlmCorpus;
    beforeAll(async () => {
      await setBackend(backend);
      // 5 × 2,000 wordpieces: ⌈10,000 / 62⌉ = 162 sequences of 64.
      corpus = mlmCorpus(tokenizer, vocabularyDocuments(tokenizer, 5, 2000, 1), {
        sequenceLength: 64,
        seed: 0,
      });
    });

    it('makes core Batches with the documented shapes and dtypes', async () => {
      await withLeakGuard(async () => {
        const source = mlmBatches(corpus, { batchSize: 8, maxPredictions: 10, seed: 0 });
        const batch: Batch = source.batch(3);
        const { x, y } = source.batch(3);
        expect([x.inputIds.shape, x.tokenTypeIds.shape, x.attentionMask.shape]).toEqual([
          [8, 64],
          [8, 64],
          [8, 64],
        ]);
        expect(y.map((t) => [t.shape, t.dtype])).toEqual([
          [[8, 10], 'int32'],
          [[8, 10], 'int32'],
          [[8, 10], 'float32'],
        ]);
        expect(Array.from(await x.tokenTypeIds.data()).every((v) => v === 0)).toBe(true);
        // 62 candidates per full row → round(9.3) = 9 predictions of 10 slots.
        const weights = (await y[2].array()) as number[][];
        expect(weights.map((row) => row.reduce((s, w) => s + w, 0))).toEqual(new Array(8).fill(9));
        const arrays = source.maskedArrays(3);
        expect(Array.from(await x.inputIds.data())).toEqual(Array.from(arrays.inputIds));
        expect(Array.from(await y[0].data())).toEqual(Array.from(arrays.maskedPositions));
        disposeBatch(batch);
        disposeBatch({ x, y });
      });
    });

    it('is deterministic in (seed, step) and differs across steps and seeds', () => {
      const a = mlmBatches(corpus, { batchSize: 8, seed: 5 });
      const b = mlmBatches(corpus, { batchSize: 8, seed: 5 });
      const c = mlmBatches(corpus, { batchSize: 8, seed: 6 });
      // b is asked for step 11 first: no state carries over between steps.
      expect(Array.from(b.maskedArrays(11).inputIds)).toEqual(Array.from(a.maskedArrays(11).inputIds));
      expect(Array.from(a.maskedArrays(11).maskedPositions)).not.toEqual(
        Array.from(a.maskedArrays(12).maskedPositions),
      );
      expect(Array.from(c.maskedArrays(11).inputIds)).not.toEqual(Array.from(a.maskedArrays(11).inputIds));
      // Each epoch visits every sequence once.
      const rows = Array.from({ length: a.batchesPerEpoch }, (_, i) =>
        Array.from(a.rows(a.batchesPerEpoch + i)),
      ).flat();
      expect(new Set(rows).size).toBe(a.batchesPerEpoch * 8);
    });

    it('evaluates the validation split in order with the same masks every time, leaking nothing', async () => {
      const source = mlmBatches(corpus, { batchSize: 2, seed: 0, split: 'validation' });
      const before = tf.memory().numTensors;
      const read = async () => {
        const out: number[] = [];
        for (const batch of source.evaluationBatches()) {
          out.push(...Array.from(await batch.x.inputIds.data()));
          disposeBatch(batch);
        }
        return out;
      };
      const first = await read();
      expect(first.length).toBe(corpus.validation.count * 64);
      expect(await read()).toEqual(first);
      for (let step = 0; step < 30; step++) disposeBatch(source.batch(step));
      expect(tf.memory().numTensors).toBe(before);
    });

    it('rejects bad options', () => {
      expect(errorOf(() => mlmBatches(corpus, { batchSize: 0 })).code).toBe('INVALID_ARGUMENT');
      expect(errorOf(() => mlmBatches(corpus, { batchSize: 2, maskProbability: 0 })).code).toBe(
        'INVALID_ARGUMENT',
      );
      expect(errorOf(() => mlmBatches(corpus, { batchSize: 2, maxPredictions: 0 })).code).toBe(
        'INVALID_ARGUMENT',
      );
      expect(errorOf(() => mlmBatches(corpus, { batchSize: 2, split: 'test' as 'train' })).code).toBe(
        'INVALID_ARGUMENT',
      );
      expect(errorOf(() => mlmBatches(corpus, { batchSize: 2 }).batch(-1)).code).toBe('INVALID_ARGUMENT');
    });
  });
}
