import * as tf from '@tensorflow/tfjs-core';
import { setBackend } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { blockGrid, expandBlocks, poolBlocks } from './blocks';
import { errorOf } from './testing';

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`blocks on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('resolves block sizes, with smaller edge blocks and whole axes', () => {
      expect(blockGrid([784, 300], { rows: 32, cols: 32 })).toEqual({
        rows: 32,
        cols: 32,
        gridRows: 25,
        gridCols: 10,
      });
      expect(blockGrid([3, 3, 16, 32], { rows: 1, cols: 'all' })).toEqual({
        rows: 1,
        cols: 32,
        gridRows: 16,
        gridCols: 1,
      });
      expect(errorOf(() => blockGrid([10], { rows: 2, cols: 2 }, 'block', 'bias')).message).toContain(
        'rank ≥ 2',
      );
      expect(errorOf(() => blockGrid([4, 4], { rows: 0, cols: 2 })).message).toContain('rows must be');
    });

    it('pools each block over the leading axes, edge blocks included, and spreads block values back', async () => {
      const before = tf.memory().numTensors;
      // Two leading slices of a 3 × 5 matrix, in blocks of 2 × 2: a 2 × 3 grid with edge blocks.
      const values = tf.tidy(() => tf.reshape(tf.range(0, 30, 1, 'float32'), [2, 3, 5]));
      const grid = blockGrid(values.shape, { rows: 2, cols: 2 });
      const sums = poolBlocks(values, grid, 'sum');
      const means = poolBlocks(values, grid, 'mean');
      const maxima = poolBlocks(values, grid, 'max');
      // Block (0, 0) holds entries 0, 1, 5, 6 and 15, 16, 20, 21 → 84; block (0, 2) holds 4, 9, 19, 24
      // → 56; block (1, 0) holds 10, 11, 25, 26 → 72; block (1, 2) holds 14 and 29 → 43.
      expect(await sums.array()).toEqual([
        [84, 100, 56],
        [72, 80, 43],
      ]);
      expect(((await means.array()) as number[][])[1]![2]).toBe(21.5);
      expect(((await maxima.array()) as number[][])[0]![0]).toBe(21);
      const blocks = tf.tensor2d([
        [1, 2, 3],
        [4, 5, 6],
      ]);
      const spread = expandBlocks(blocks, grid, [2, 3, 5]);
      const slice = [
        [1, 1, 2, 2, 3],
        [1, 1, 2, 2, 3],
        [4, 4, 5, 5, 6],
      ];
      expect(await spread.array()).toEqual([slice, slice]);
      // The gradient of a block value is the sum of its entries' upstream gradients: pooled sums.
      const gradient = tf.grad((block: tf.Tensor) =>
        tf.sum(tf.mul(expandBlocks(block, grid, [2, 3, 5]), values)),
      )(blocks);
      expect(await gradient.array()).toEqual(await sums.array());
      tf.dispose([values, sums, means, maxima, blocks, spread, gradient]);
      expect(tf.memory().numTensors).toBe(before);
    });
  });
}
