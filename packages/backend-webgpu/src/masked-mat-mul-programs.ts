/**
 * WGSL of the masked projection y = act(x·(W ⊙ M) + b) and its gradients, for
 * {@link runMultiOutputProgram}. The three products share one tiled program body: a workgroup of
 * {@link THREADS}×{@link THREADS} threads owns a {@link TILE}×{@link TILE} block of the output, each
 * thread 4×4 of it (rows ty + 8i, columns tx + 8j, so neighbouring threads write neighbouring
 * columns); the operands are staged {@link DEPTH} deep in workgroup memory, loaded along whichever axis
 * is contiguous in global memory (a transposed operand is read in place, never copied). What makes
 * each product a masked-projection kernel is in its load functions (W ⊙ M, dy ⊙ act′) and its
 * epilogue (bias + activation; ⊙ M and ⊙ W), so W ⊙ M, g = dy ⊙ act′ and dW′ = xᵀ·g never exist
 * as tensors.
 */

import { GELU_SLOPE, NORMAL_CDF } from './fused-programs';
import type { MultiOutputProgram } from './program-dispatch';

/** Output rows and columns per workgroup. */
export const TILE = 32;
/** Threads per workgroup along each axis (each computes TILE / THREADS = 4 outputs per axis). */
const THREADS = 8;
/** The depth of the product staged per step. */
const DEPTH = 32;
/** Workgroup-memory row pitch: one float of padding keeps column reads on distinct banks. */
const PITCH = DEPTH + 1;
const PER_THREAD = TILE / THREADS;

/** The activation after the bias. */
export type ProjectionActivation = 'linear' | 'relu' | 'gelu';

/** How a tile operand lies in global memory: `rows` = contiguous along the tile's row (first) index. */
type Contiguous = 'rows' | 'depth' | 'cols';

interface ProductParts {
  key: string;
  outputs: string[];
  inputs: string[];
  /** WGSL helpers: `loadA(row, depth) -> f32`, `loadB(depth, col) -> f32`, `store(row, col, acc)`. */
  functions: string;
  /** Along which index consecutive addresses of A (rows/depth) and of B (depth/cols) lie. */
  aContiguous: Contiguous;
  bContiguous: Contiguous;
}

/**
 * Statements that stage TILE×DEPTH elements of one operand, TILE·DEPTH / THREADS² per thread: lane
 * `e` takes element (e / 32, e % 32) of the contiguous-last order, so a warp reads consecutive
 * addresses.
 */
function stage(operand: 'A' | 'B', contiguous: Contiguous): string {
  const perThread = (TILE * DEPTH) / (THREADS * THREADS);
  // (outer, inner) of the element this lane loads; inner runs along consecutive lanes.
  const [first, second] =
    operand === 'A'
      ? contiguous === 'depth'
        ? ['r = e / 32', 'd = e % 32']
        : ['d = e / 32', 'r = e % 32']
      : contiguous === 'cols'
        ? ['d = e / 32', 'c = e % 32']
        : ['c = e / 32', 'd = e % 32'];
  const store =
    operand === 'A'
      ? `tileA[r * ${PITCH} + d] = loadA(rowBase + r, depthBase + d);`
      : `tileB[d * ${PITCH} + c] = loadB(depthBase + d, colBase + c);`;
  return `
    for (var i = 0; i < ${perThread}; i = i + 1) {
      let e = lane + i * ${THREADS * THREADS};
      let ${first};
      let ${second};
      ${store}
    }`;
}

/** The 4×4 multiply-accumulate of one depth step, unrolled. */
function accumulate(): string {
  const lines = [
    `let b = vec4<f32>(${Array.from({ length: PER_THREAD }, (_, j) => `tileB[d * ${PITCH} + tx + ${j * THREADS}]`).join(', ')});`,
  ];
  for (let i = 0; i < PER_THREAD; i += 1) {
    lines.push(`acc${i} = fma(vec4<f32>(tileA[(ty + ${i * THREADS}) * ${PITCH} + d]), b, acc${i});`);
  }
  return lines.join('\n        ');
}

/** The bounds-checked stores of a thread's 4×4 outputs through `store`. */
function epilogue(): string {
  const lines: string[] = [];
  for (let i = 0; i < PER_THREAD; i += 1) {
    for (let j = 0; j < PER_THREAD; j += 1) {
      const [row, col] = [`rowBase + ty + ${i * THREADS}`, `colBase + tx + ${j * THREADS}`];
      lines.push(
        `if (${row} < uniforms.rows && ${col} < uniforms.cols) { store(${row}, ${col}, acc${i}[${j}]); }`,
      );
    }
  }
  return lines.join('\n    ');
}

/**
 * A tiled product C[rows, cols] = Σ_depth A(row, depth)·B(depth, col) over `uniforms.inner`, with the
 * loads and stores of `parts`, dispatched as ⌈cols/TILE⌉ × ⌈rows/TILE⌉ workgroups.
 */
function tiledProduct(parts: ProductParts, rows: number, cols: number): MultiOutputProgram {
  const code = `
var<workgroup> tileA : array<f32, ${TILE * PITCH}>;
var<workgroup> tileB : array<f32, ${DEPTH * PITCH}>;
${parts.functions}
@compute @workgroup_size(${THREADS}, ${THREADS}, 1)
fn main(@builtin(local_invocation_id) local : vec3<u32>, @builtin(workgroup_id) group : vec3<u32>) {
  let tx = i32(local.x);
  let ty = i32(local.y);
  let lane = ty * ${THREADS} + tx;
  let rowBase = i32(group.y) * ${TILE};
  let colBase = i32(group.x) * ${TILE};
  ${Array.from({ length: PER_THREAD }, (_, i) => `var acc${i} = vec4<f32>(0.0);`).join(' ')}
  for (var depthBase = 0; depthBase < uniforms.inner; depthBase = depthBase + ${DEPTH}) {
    ${stage('A', parts.aContiguous)}
    ${stage('B', parts.bContiguous)}
    workgroupBarrier();
    for (var d = 0; d < ${DEPTH}; d = d + 1) {
        ${accumulate()}
    }
    workgroupBarrier();
  }
  ${epilogue()}
}
`;
  return {
    key: parts.key,
    outputs: parts.outputs,
    inputs: parts.inputs,
    code,
    outputShapes: [],
    dispatch: [Math.ceil(cols / TILE), Math.ceil(rows / TILE), 1],
  };
}

/** `fn slope(index) -> f32`: act′ at element `index` of the saved tensor (y for relu, z for gelu). */
function slopeFunction(activation: ProjectionActivation): string {
  if (activation === 'relu')
    return 'fn slope(index : i32) -> f32 { return select(0.0, 1.0, f32(saved[index]) > 0.0); }';
  if (activation === 'gelu')
    return `${GELU_SLOPE}\nfn slope(index : i32) -> f32 { return geluSlope(f32(saved[index])); }`;
  return 'fn slope(index : i32) -> f32 { return 1.0; }';
}

/** `g(index)` = dy ⊙ act′ at a flat index of dy. */
const UPSTREAM = (activation: ProjectionActivation) =>
  activation === 'linear' ? 'f32(dy[index])' : 'f32(dy[index]) * slope(index)';

/** The inputs a gradient program reads for the activation (the saved y or z), none when linear. */
const savedInputs = (activation: ProjectionActivation) => (activation === 'linear' ? [] : ['saved']);

/**
 * The forward pass, one dispatch: y = act(x·(W ⊙ M) + b) for x [rows, inner], W and M [inner, cols]
 * (the sizes travel as uniforms: rows, inner, cols);
 * for gelu also z (the pre-activation) as a second output.
 */
export function maskedMatMulProgram(
  rows: number,
  cols: number,
  activation: ProjectionActivation,
  withBias: boolean,
): MultiOutputProgram {
  const act = activation === 'relu' ? 'max(z, 0.0)' : activation === 'gelu' ? 'z * normalCdf(z)' : 'z';
  const functions = `${activation === 'gelu' ? NORMAL_CDF : ''}
fn loadA(row : i32, depth : i32) -> f32 {
  if (row < uniforms.rows && depth < uniforms.inner) { return f32(x[row * uniforms.inner + depth]); }
  return 0.0;
}
fn loadB(depth : i32, col : i32) -> f32 {
  if (depth < uniforms.inner && col < uniforms.cols) {
    let index = depth * uniforms.cols + col;
    return f32(weight[index]) * f32(mask[index]);
  }
  return 0.0;
}
fn store(row : i32, col : i32, acc : f32) {
  let index = row * uniforms.cols + col;
  let z = acc${withBias ? ' + f32(bias[col])' : ''};
  result[index] = ${act};${activation === 'gelu' ? '\n  preActivation[index] = z;' : ''}
}`;
  const outputs = activation === 'gelu' ? ['result', 'preActivation'] : ['result'];
  const program = tiledProduct(
    {
      key: `finepruneMaskedMatMul_${activation}_${withBias ? 'bias' : 'noBias'}`,
      outputs,
      inputs: withBias ? ['x', 'weight', 'mask', 'bias'] : ['x', 'weight', 'mask'],
      functions,
      aContiguous: 'depth',
      bContiguous: 'cols',
    },
    rows,
    cols,
  );
  return { ...program, outputShapes: outputs.map(() => [rows, cols]) };
}

/**
 * dx = g·(W ⊙ M)ᵀ, g = dy ⊙ act′, one dispatch: dy [rows, units], W and M [inputs, units] read
 * transposed with the mask applied as they are staged; output [rows, inputs].
 */
export function maskedMatMulInputGradProgram(
  rows: number,
  inputs: number,
  activation: ProjectionActivation,
): MultiOutputProgram {
  const functions = `${slopeFunction(activation)}
fn loadA(row : i32, depth : i32) -> f32 {
  if (row < uniforms.rows && depth < uniforms.inner) {
    let index = row * uniforms.inner + depth;
    return ${UPSTREAM(activation)};
  }
  return 0.0;
}
fn loadB(depth : i32, col : i32) -> f32 {
  if (depth < uniforms.inner && col < uniforms.cols) {
    let index = col * uniforms.inner + depth;
    return f32(weight[index]) * f32(mask[index]);
  }
  return 0.0;
}
fn store(row : i32, col : i32, acc : f32) { result[row * uniforms.cols + col] = acc; }`;
  const program = tiledProduct(
    {
      key: `finepruneMaskedMatMulInputGrad_${activation}`,
      outputs: ['result'],
      inputs: ['dy', 'weight', 'mask', ...savedInputs(activation)],
      functions,
      aContiguous: 'depth',
      bContiguous: 'depth',
    },
    rows,
    inputs,
  );
  return { ...program, outputShapes: [[rows, inputs]] };
}

/**
 * ∂L/∂W = (xᵀ·g) ⊙ M and, with scores, ∂L/∂S = (xᵀ·g) ⊙ W (Movement Pruning, Sanh et al. 2020,
 * Eq. 2), one dispatch: x [batch, inputs] read transposed, g = dy ⊙ act′ [batch, units]; outputs
 * [inputs, units].
 */
export function maskedMatMulWeightGradProgram(
  inputs: number,
  units: number,
  activation: ProjectionActivation,
  withScores: boolean,
): MultiOutputProgram {
  const functions = `${slopeFunction(activation)}
fn loadA(row : i32, depth : i32) -> f32 {
  if (row < uniforms.rows && depth < uniforms.inner) { return f32(x[depth * uniforms.rows + row]); }
  return 0.0;
}
fn loadB(depth : i32, col : i32) -> f32 {
  if (depth < uniforms.inner && col < uniforms.cols) {
    let index = depth * uniforms.cols + col;
    return ${UPSTREAM(activation)};
  }
  return 0.0;
}
fn store(row : i32, col : i32, acc : f32) {
  let index = row * uniforms.cols + col;
  weightGradient[index] = acc * f32(mask[index]);${withScores ? '\n  scoreGradient[index] = acc * f32(weight[index]);' : ''}
}`;
  const outputs = withScores ? ['weightGradient', 'scoreGradient'] : ['weightGradient'];
  const program = tiledProduct(
    {
      key: `finepruneMaskedMatMulWeightGrad_${activation}_${withScores ? 'scores' : 'noScores'}`,
      outputs,
      inputs: ['x', 'dy', 'mask', ...(withScores ? ['weight'] : []), ...savedInputs(activation)],
      functions,
      aContiguous: 'rows',
      bContiguous: 'cols',
    },
    inputs,
    units,
  );
  return { ...program, outputShapes: outputs.map(() => [inputs, units]) };
}

/** Threads per workgroup of the bias gradient, one column each. */
const COLUMN_THREADS = 64;

/** ∂L/∂b = Σ_rows g, g = dy ⊙ act′, one thread per column (rows in order); output [units]. */
export function maskedMatMulBiasGradProgram(
  units: number,
  activation: ProjectionActivation,
): MultiOutputProgram {
  const code = `
${slopeFunction(activation)}
@compute @workgroup_size(${COLUMN_THREADS}, 1, 1)
fn main(@builtin(global_invocation_id) global : vec3<u32>) {
  let col = i32(global.x);
  if (col < uniforms.cols) {
    var total = 0.0;
    for (var row = 0; row < uniforms.rows; row = row + 1) {
      let index = row * uniforms.cols + col;
      total = total + ${UPSTREAM(activation)};
    }
    result[col] = total;
  }
}
`;
  return {
    key: `finepruneMaskedMatMulBiasGrad_${activation}`,
    outputs: ['result'],
    inputs: ['dy', ...savedInputs(activation)],
    code,
    outputShapes: [[units]],
    dispatch: [Math.ceil(units / COLUMN_THREADS), 1, 1],
  };
}
