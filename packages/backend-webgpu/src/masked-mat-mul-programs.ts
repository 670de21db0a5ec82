/**
 * WGSL of the masked projection y = act(x·(W ⊙ M) + b) and its gradients, for
 * {@link runMultiOutputProgram}. The three products share one tiled program body: a workgroup of
 * {@link THREADS}×{@link THREADS} threads owns a {@link TILE_ROWS}×{@link TILE_COLS} block of the
 * output, each thread 8×4 of it; the operands are staged {@link DEPTH} deep in workgroup memory as
 * vec4s, loaded along whichever axis is contiguous in global memory (a transposed operand is read in
 * place, never copied). What makes each product a masked-projection kernel is in its load functions
 * (W ⊙ M, dy ⊙ act′) and its epilogue (bias + activation; ⊙ M and ⊙ W), so W ⊙ M, g = dy ⊙ act′ and
 * dW′ = xᵀ·g never exist as tensors.
 */

import { GELU_SLOPE, NORMAL_CDF } from './fused-programs';
import type { MultiOutputProgram } from './program-dispatch';

/** Threads per workgroup along each axis. */
const THREADS = 8;
/** The vec4s of rows a thread owns: it computes 4 · ROW_VECTORS consecutive rows × 4 consecutive columns. */
const ROW_VECTORS = 2;
/** Output rows and columns per workgroup. */
const TILE_ROWS = THREADS * 4 * ROW_VECTORS;
const TILE_COLS = THREADS * 4;
/** The depth of the product staged per step. */
const DEPTH = 32;
/** Depth steps per iteration of the inner loop (unrolled by hand). */
const UNROLL = 4;

/** The activation after the bias. */
export type ProjectionActivation = 'linear' | 'relu' | 'gelu';

/** Whether consecutive addresses of an operand run along its depth (the product's inner index). */
type Contiguous = 'depth' | 'outer';

interface ProductParts {
  key: string;
  outputs: string[];
  inputs: string[];
  /** WGSL helpers: `loadA(row, depth) -> f32`, `loadB(depth, col) -> f32`, `store(row, col, acc)`. */
  functions: string;
  /** Along which index consecutive addresses of A and of B lie. */
  aContiguous: Contiguous;
  bContiguous: Contiguous;
}

/**
 * Statements that stage one operand's block (TILE_ROWS or TILE_COLS × DEPTH) as vec4s of 4
 * consecutive rows (A) or columns (B) at one depth, `tileA[d · groups + rowGroup]`. Unit `u` of the
 * block is split so that consecutive lanes read consecutive addresses of the operand in memory.
 */
function stage(operand: 'A' | 'B', contiguous: Contiguous): string {
  const groups = (operand === 'A' ? TILE_ROWS : TILE_COLS) / 4;
  const [depth, group] =
    contiguous === 'depth' ? [`u % ${DEPTH}`, `u / ${DEPTH}`] : [`u / ${groups}`, `u % ${groups}`];
  const load = (k: number) =>
    operand === 'A'
      ? `loadA(rowBase + group * 4 + ${k}, depthBase + d)`
      : `loadB(depthBase + d, colBase + group * 4 + ${k})`;
  const values = Array.from({ length: 4 }, (_, k) => load(k)).join(', ');
  return `
    for (var i = 0; i < ${(DEPTH * groups) / (THREADS * THREADS)}; i = i + 1) {
      let u = lane + i * ${THREADS * THREADS};
      let d = ${depth};
      let group = ${group};
      tile${operand}[d * ${groups} + group] = vec4<f32>(${values});
    }`;
}

/** The bounds-checked stores of a thread's outputs through `store`. */
function epilogue(): string {
  const lines: string[] = [];
  for (let i = 0; i < 4 * ROW_VECTORS; i += 1) {
    for (let j = 0; j < 4; j += 1) {
      const [row, col] = [`rowBase + ty * ${4 * ROW_VECTORS} + ${i}`, `colBase + tx * 4 + ${j}`];
      lines.push(
        `if (${row} < uniforms.rows && ${col} < uniforms.cols) { store(${row}, ${col}, acc${i}[${j}]); }`,
      );
    }
  }
  return lines.join('\n  ');
}

/** One depth step of the multiply-accumulate: ROW_VECTORS vec4s of A, one of B, 16 · ROW_VECTORS fmas. */
function accumulate(depth: string): string {
  const lines = [`let b = tileB[(${depth}) * ${TILE_COLS / 4} + tx];`];
  for (let r = 0; r < ROW_VECTORS; r += 1) {
    lines.push(`let a${r} = tileA[(${depth}) * ${TILE_ROWS / 4} + ty * ${ROW_VECTORS} + ${r}];`);
    for (let c = 0; c < 4; c += 1) {
      const i = r * 4 + c;
      lines.push(`acc${i} = fma(vec4<f32>(a${r}[${c}]), b, acc${i});`);
    }
  }
  return `{\n        ${lines.join('\n        ')}\n      }`;
}

/**
 * A tiled product C[rows, cols] = Σ_depth A(row, depth)·B(depth, col) over `uniforms.inner`, with the
 * loads and stores of `parts`, dispatched as ⌈cols/TILE_COLS⌉ × ⌈rows/TILE_ROWS⌉ workgroups. Per depth
 * step a thread reads two vec4s of A (its 8 rows) and one of B (its 4 columns) and does 32
 * multiply-adds (4 × 4 per thread took 1.2–1.45× TF.js's matMul on llvmpipe; 8 × 4 about 1×).
 */
function tiledProduct(parts: ProductParts, rows: number, cols: number): MultiOutputProgram {
  const accumulators = Array.from({ length: 4 * ROW_VECTORS }, (_, i) => `var acc${i} = vec4<f32>(0.0);`);
  const steps = Array.from({ length: UNROLL }, (_, k) => accumulate(`step + ${k}`));
  const code = `
var<workgroup> tileA : array<vec4<f32>, ${(DEPTH * TILE_ROWS) / 4}>;
var<workgroup> tileB : array<vec4<f32>, ${(DEPTH * TILE_COLS) / 4}>;
${parts.functions}
@compute @workgroup_size(${THREADS}, ${THREADS}, 1)
fn main(@builtin(local_invocation_id) local : vec3<u32>, @builtin(workgroup_id) group : vec3<u32>) {
  let tx = i32(local.x);
  let ty = i32(local.y);
  let lane = ty * ${THREADS} + tx;
  let rowBase = i32(group.y) * ${TILE_ROWS};
  let colBase = i32(group.x) * ${TILE_COLS};
  ${accumulators.join(' ')}
  for (var depthBase = 0; depthBase < uniforms.inner; depthBase = depthBase + ${DEPTH}) {
    ${stage('A', parts.aContiguous)}
    ${stage('B', parts.bContiguous)}
    workgroupBarrier();
    for (var step = 0; step < ${DEPTH}; step = step + ${UNROLL}) {
      ${steps.join('\n      ')}
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
    dispatch: [Math.ceil(cols / TILE_COLS), Math.ceil(rows / TILE_ROWS), 1],
  };
}

/**
 * `fn <signature> -> f32`: `value` (an expression of `index`) where `inside` holds, else 0; the
 * index is clamped and the value selected rather than branched on, so the lanes of a tile's edge
 * take the same path as the others.
 */
function boundedLoad(signature: string, inside: string, index: string, value: string): string {
  return `
fn ${signature} -> f32 {
  let inside = ${inside};
  let index = select(0, ${index}, inside);
  return select(0.0, ${value}, inside);
}`;
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

/** Where A(row, depth) and B(depth, col) lie inside the operands. */
const A_INSIDE = 'row < uniforms.rows && depth < uniforms.inner';
const B_INSIDE = 'depth < uniforms.inner && col < uniforms.cols';
/** W ⊙ M at `index`, as the products read it. */
const MASKED_WEIGHT = 'f32(weight[index]) * f32(mask[index])';

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
${boundedLoad('loadA(row : i32, depth : i32)', A_INSIDE, 'row * uniforms.inner + depth', 'f32(x[index])')}
${boundedLoad('loadB(depth : i32, col : i32)', B_INSIDE, 'depth * uniforms.cols + col', MASKED_WEIGHT)}
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
      bContiguous: 'outer',
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
${boundedLoad('loadA(row : i32, depth : i32)', A_INSIDE, 'row * uniforms.inner + depth', UPSTREAM(activation))}
${boundedLoad('loadB(depth : i32, col : i32)', B_INSIDE, 'col * uniforms.inner + depth', MASKED_WEIGHT)}
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
${boundedLoad('loadA(row : i32, depth : i32)', A_INSIDE, 'depth * uniforms.rows + row', 'f32(x[index])')}
${boundedLoad('loadB(depth : i32, col : i32)', B_INSIDE, 'depth * uniforms.cols + col', UPSTREAM(activation))}
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
      aContiguous: 'outer',
      bContiguous: 'outer',
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
