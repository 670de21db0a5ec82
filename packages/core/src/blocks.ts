import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';

/**
 * A block size over the last two axes of a weight: `rows × cols` entries (every leading axis, such
 * as a convolution's kernel taps, lies inside each block). `'all'` spans the whole axis, so
 * `{ rows: 1, cols: 'all' }` is one input row and `{ rows: 'all', cols: 1 }` one output column.
 *
 * @example
 * ```ts
 * const size: BlockSize = { rows: 32, cols: 32 };
 * ```
 */
export interface BlockSize {
  rows: number | 'all';
  cols: number | 'all';
}

/**
 * The grid of blocks of a weight: the block height and width resolved, and how many blocks fit
 * along each of the last two axes (edge blocks may be smaller).
 *
 * @example
 * ```ts
 * blockGrid([784, 300], { rows: 32, cols: 32 }); // { rows: 32, cols: 32, gridRows: 25, gridCols: 10 }
 * ```
 */
export interface BlockGrid {
  readonly rows: number;
  readonly cols: number;
  readonly gridRows: number;
  readonly gridCols: number;
}

/**
 * Resolves a {@link BlockSize} for a weight shape. Throws `INVALID_ARGUMENT` for a rank below 2 or
 * a size that is not a whole number ≥ 1, naming `owner` and `parameter`.
 *
 * @example
 * ```ts
 * blockGrid([3, 3, 16, 32], { rows: 4, cols: 'all' }, 'block', 'conv/kernel'); // 4 × 1 blocks of 4 × 32
 * ```
 */
export function blockGrid(
  shape: readonly number[],
  size: BlockSize,
  owner = 'block',
  parameter = 'the weight',
): BlockGrid {
  if (shape.length < 2)
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `${owner}: "${parameter}" has shape [${shape}]; blocks need a weight of rank ≥ 2.`,
      fix: 'Exclude vectors (biases, norms) from block pruning.',
    });
  const [height, width] = shape.slice(-2) as [number, number];
  const resolve = (value: number | 'all', axis: number, name: string) => {
    if (value === 'all') return axis;
    if (!(Number.isInteger(value) && value >= 1))
      throw new FinepruneError({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: `${owner}: ${name} must be a whole number ≥ 1 or "all", got ${JSON.stringify(value)}.`,
        fix: 'Use a block size such as 32, or "all" for the whole axis.',
      });
    return Math.min(value, axis);
  };
  const rows = resolve(size.rows, height, 'rows');
  const cols = resolve(size.cols, width, 'cols');
  return { rows, cols, gridRows: Math.ceil(height / rows), gridCols: Math.ceil(width / cols) };
}

/** The weight reshaped to [leading, gridRows, rows, gridCols, cols], padded with `fill` at the edges. */
function blocked(values: tf.Tensor, grid: BlockGrid, fill: number): tf.Tensor {
  const [height, width] = values.shape.slice(-2) as [number, number];
  const leading = values.size / (height * width);
  let matrix: tf.Tensor = tf.reshape(values, [leading, height, width]);
  const padRows = grid.gridRows * grid.rows - height;
  const padCols = grid.gridCols * grid.cols - width;
  if (padRows > 0 || padCols > 0)
    matrix = tf.pad(
      matrix,
      [
        [0, 0],
        [0, padRows],
        [0, padCols],
      ],
      fill,
    );
  return tf.reshape(matrix, [leading, grid.gridRows, grid.rows, grid.gridCols, grid.cols]);
}

/**
 * Reduces a weight-shaped tensor to one value per block, shape `[gridRows, gridCols]`: the `sum`,
 * the sum of squares, the `max`, or the `mean` over the entries each block holds (edge blocks hold
 * fewer).
 *
 * @example
 * ```ts
 * poolBlocks(tf.abs(kernel), blockGrid(kernel.shape, { rows: 4, cols: 4 }), 'sum'); // L1 norm per 4×4 block
 * ```
 */
export function poolBlocks(
  values: tf.Tensor,
  grid: BlockGrid,
  reduction: 'sum' | 'sumOfSquares' | 'max' | 'mean',
): tf.Tensor2D {
  return tf.tidy(() => {
    const axes = [0, 2, 4];
    if (reduction === 'max')
      return tf.max(blocked(values, grid, Number.NEGATIVE_INFINITY), axes) as tf.Tensor2D;
    const summed = tf.sum(blocked(reduction === 'sumOfSquares' ? tf.square(values) : values, grid, 0), axes);
    if (reduction !== 'mean') return summed as tf.Tensor2D;
    const counts = tf.sum(blocked(tf.onesLike(values), grid, 0), axes);
    return tf.div(summed, counts) as tf.Tensor2D;
  });
}

/**
 * Spreads one value per block (`[gridRows, gridCols]`) over a weight's shape. Differentiable: a
 * block's gradient is the sum of its entries' gradients (Eq. 2 of Movement Pruning summed over
 * the block, for learned block scores).
 *
 * @example
 * ```ts
 * const mask = expandBlocks(blockMask, grid, kernel.shape);
 * ```
 */
export function expandBlocks(values: tf.Tensor, grid: BlockGrid, shape: readonly number[]): tf.Tensor {
  return tf.tidy(() => {
    const [height, width] = shape.slice(-2) as [number, number];
    const tiled = tf.broadcastTo(tf.reshape(values, [grid.gridRows, 1, grid.gridCols, 1]), [
      grid.gridRows,
      grid.rows,
      grid.gridCols,
      grid.cols,
    ]);
    let matrix = tf.reshape(tiled, [grid.gridRows * grid.rows, grid.gridCols * grid.cols]);
    if (matrix.shape[0] !== height || matrix.shape[1] !== width)
      matrix = tf.slice(matrix, [0, 0], [height, width]);
    return tf.broadcastTo(matrix, [...shape]);
  });
}
