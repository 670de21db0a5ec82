import * as tf from '@tensorflow/tfjs-core';
import {
  type BlockGrid,
  type BlockSize,
  blockGrid,
  checkKeptCountRule,
  expandBlocks,
  type KeptCountRule,
  keptCountFor,
  type MaskFunction,
  type MaskInput,
  poolBlocks,
} from '@fineprune/core';
import { ErrorCodes } from '@fineprune/tensor/errors';
import { topCountMasks } from '@fineprune/tensor/select';
import { emptyMaskError } from './empty-mask';
import { readScores } from './read-scores';
import { invalid } from './invalid';

/**
 * How a block's scores become the block's score: `sum` (magnitude scores give the L1 norm; learned
 * per-weight movement scores give their summed movement), `l2` (the L2 norm of the scores), `mean`
 * (fair between edge blocks and full ones, and the exact block score of learned block scores spread
 * over the weight), `max`.
 *
 * @example
 * ```ts
 * const pool: BlockPool = 'l2';
 * ```
 */
export type BlockPool = 'sum' | 'l2' | 'mean' | 'max';

/**
 * Options of {@link block}.
 *
 * @example
 * ```ts
 * const options: BlockOptions = { rows: 32, cols: 32, scope: 'global' };
 * ```
 */
export interface BlockOptions extends BlockSize {
  /**
   * `top` (default): keep the blocks with the largest scores, the target being the fraction of
   * blocks removed (Top-v over blocks, Eq. 1 of Movement Pruning). `threshold`: keep the blocks
   * whose score is above τ, the target of a threshold schedule (soft movement pruning by block).
   */
  selection?: 'top' | 'threshold';
  /** Rank the blocks of each parameter (`local`, default) or of all the group's parameters (`global`); `top` only. */
  scope?: 'local' | 'global';
  /** Default `sum`. See {@link BlockPool}. */
  pool?: BlockPool;
  /** How the sparsity v of n blocks becomes a kept count (`KeptCountRule` of `@fineprune/core`); default `round`. */
  keptCount?: KeptCountRule;
}

function checkOptions(options: BlockOptions): Required<Omit<BlockOptions, 'rows' | 'cols'>> {
  const selection = options.selection ?? 'top';
  const scope = options.scope ?? 'local';
  const pool = options.pool ?? 'sum';
  const keptCount = options.keptCount ?? 'round';
  if (selection !== 'top' && selection !== 'threshold')
    invalid(
      `block: selection must be "top" or "threshold", got ${JSON.stringify(selection)}.`,
      'Use "top" or "threshold".',
    );
  if (scope !== 'local' && scope !== 'global')
    invalid(
      `block: scope must be "local" or "global", got ${JSON.stringify(scope)}.`,
      'Use "local" or "global".',
    );
  if (!['sum', 'l2', 'mean', 'max'].includes(pool))
    invalid(
      `block: pool must be "sum", "l2", "mean" or "max", got ${JSON.stringify(pool)}.`,
      'Use "sum" (the default).',
    );
  checkKeptCountRule('block', keptCount);
  // Check the sizes once on a shape every size fits.
  blockGrid([Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER], options);
  return { selection, scope, pool, keptCount };
}

/** One score per block of a parameter, as a flat array in row-major grid order. */
async function blockScores(input: MaskInput, grid: BlockGrid, pool: BlockPool): Promise<Float32Array> {
  const pooled = tf.tidy(() => {
    const reduced = poolBlocks(input.scores, grid, pool === 'l2' ? 'sumOfSquares' : pool);
    return pool === 'l2' ? tf.sqrt(reduced) : reduced;
  });
  const values = Float32Array.from(await readScores(pooled));
  pooled.dispose();
  return values;
}

/** Keeps the top blocks: `kept` of `blocks` per parameter, or across the group with `global`. */
function topBlocks(
  scores: readonly Float32Array[],
  inputs: readonly MaskInput[],
  sparsity: number,
  scope: 'local' | 'global',
  rule: KeptCountRule,
): Float32Array[] {
  if (!(sparsity >= 0 && sparsity < 1))
    invalid(
      `block: sparsity must be in [0, 1), got ${sparsity}.`,
      'Give the schedule a final sparsity below 1.',
      ErrorCodes.INVALID_SPARSITY,
    );
  if (scope === 'global') {
    const total = scores.reduce((sum, values) => sum + values.length, 0);
    const kept = keptCountFor(total, sparsity, rule);
    if (kept === 0)
      throw emptyMaskError(
        'block',
        `the group of ${inputs.length} parameters`,
        total,
        `at sparsity ${sparsity}`,
        'Lower the final sparsity.',
      );
    return topCountMasks(scores, kept);
  }
  return scores.map((values, index) => {
    const kept = keptCountFor(values.length, sparsity, rule);
    if (kept === 0)
      throw emptyMaskError(
        'block',
        JSON.stringify(inputs[index]!.parameter.name),
        values.length,
        `at sparsity ${sparsity}`,
        `Lower the final sparsity below ${1 - 0.5 / values.length} (the parameter has ${values.length} blocks), or use smaller blocks.`,
      );
    return topCountMasks([values], kept)[0]!;
  });
}

/** Keeps the blocks scored above τ, and the best block of a parameter that would keep none. */
function thresholdBlocks(scores: readonly Float32Array[], tau: number): Float32Array[] {
  if (Number.isNaN(tau))
    invalid('block: the threshold τ is NaN.', 'Use a schedule whose thresholds are numbers.');
  return scores.map((values) => {
    const kept = values.map((value) => (value > tau ? 1 : 0));
    return kept.some((value) => value === 1) ? kept : topCountMasks([values], 1)[0]!;
  });
}

/**
 * The block mask: whole `rows × cols` blocks of the last two axes (every leading axis, such as a
 * convolution's kernel taps, inside each block) are kept or removed together, as block movement
 * pruning does for attention matrices (32 × 32 blocks) and as dense kernels can skip. Each block's
 * score pools the scores of its entries (`pool`), so it composes with every score strategy:
 * `magnitude()` with `sum` ranks blocks by their L1 norm, per-weight `movement()` by their summed
 * movement, learned block scores (`blockMovement` of `@fineprune/structured`) with `mean` by the
 * block's own score. `{ rows: 1, cols: 'all' }` prunes whole input rows and `{ rows: 'all', cols: 1 }`
 * whole output columns of each matrix. Edge blocks may be smaller; the target counts blocks.
 *
 * `selection: 'threshold'` keeps the blocks scored above τ (a threshold schedule; soft movement
 * pruning by block), and the best block of a parameter that would keep none. Gradients are
 * straight-through (Eq. 2 of Movement Pruning).
 *
 * @example
 * ```ts
 * const mask = block({ rows: 32, cols: 32, scope: 'global' });
 * await pruneOnce(prunable, { scores: magnitude(), mask, sparsity: 0.5 });
 * ```
 */
export function block(options: BlockOptions): MaskFunction {
  if (options === null || typeof options !== 'object')
    invalid('block() needs options { rows, cols }.', 'Pass block({ rows: 32, cols: 32 }).');
  const { selection, scope, pool, keptCount } = checkOptions(options);
  const size: BlockSize = { rows: options.rows, cols: options.cols };
  return {
    id: 'block',
    targetKind: selection === 'top' ? 'sparsity' : 'threshold',
    async compute(inputs: readonly MaskInput[], target: number) {
      const grids = inputs.map((input) =>
        blockGrid(input.parameter.shape, size, 'block', input.parameter.name),
      );
      const scores: Float32Array[] = [];
      for (const [index, input] of inputs.entries())
        scores.push(await blockScores(input, grids[index]!, pool));
      const kept =
        selection === 'top'
          ? topBlocks(scores, inputs, target, scope, keptCount)
          : thresholdBlocks(scores, target);
      return inputs.map((input, index) =>
        tf.tidy(() => {
          const grid = grids[index]!;
          const blocks = tf.tensor2d(kept[index]!, [grid.gridRows, grid.gridCols]);
          return expandBlocks(blocks, grid, input.parameter.shape);
        }),
      );
    },
    toConfig: () => ({
      type: 'block',
      rows: options.rows,
      cols: options.cols,
      selection,
      scope,
      pool,
      keptCount,
    }),
  };
}
