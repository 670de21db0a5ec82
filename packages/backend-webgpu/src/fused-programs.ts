/**
 * WGSL programs of the fused training kernels, in the form tfjs-backend-webgpu compiles and caches
 * (`WebGPUProgram`): each reads its inputs as flat arrays by name and writes `result`. Row programs
 * give one workgroup of {@link ROW_THREADS} threads to a row and reduce in workgroup memory.
 */

import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';

/** Threads per workgroup of the row programs (a power of two). */
export const ROW_THREADS = 64;
/** Threads per workgroup of the element-wise programs. */
const FLAT_THREADS = 256;

/** The shared parts of a program; the backend fills in `shaderKey` and `pipeline`. */
function program(
  key: string,
  variableNames: string[],
  outputShape: number[],
  dispatchX: number,
  workgroupX: number,
  uniforms: string,
  code: string,
): WebGPUProgram {
  return {
    variableNames,
    outputShape,
    shaderKey: key,
    dispatchLayout: { x: outputShape.map((_, axis) => axis) },
    dispatch: [dispatchX, 1, 1],
    workgroupSize: [workgroupX, 1, 1],
    uniforms,
    getUserCode: () => code,
  };
}

/**
 * A workgroup tree reduction over the row threads, `fn name(value : f32) -> f32`, that returns the
 * sum (or maximum) to every thread; called from uniform control flow only (it holds barriers). Each
 * reduction of a program gets its own function and workgroup array: on Dawn's OpenGL backend over
 * llvmpipe, the read of the result was moved past the closing barrier, so lanes 8 and up of a
 * workgroup read the array after the next reduction had started to overwrite it.
 */
function reduction(name: string, combine: 'sum' | 'max'): string {
  const steps: string[] = [];
  for (let width = ROW_THREADS / 2; width >= 1; width /= 2) {
    const right = `${name}Partial[tid + ${width}]`;
    const merged =
      combine === 'sum' ? `${name}Partial[tid] + ${right}` : `max(${name}Partial[tid], ${right})`;
    steps.push(`if (tid < ${width}) { ${name}Partial[tid] = ${merged}; }\n    workgroupBarrier();`);
  }
  return `
  var<workgroup> ${name}Partial : array<f32, ${ROW_THREADS}>;
  fn ${name}(value : f32) -> f32 {
    let tid = i32(localIndex);
    ${name}Partial[tid] = value;
    workgroupBarrier();
    ${steps.join('\n    ')}
    return ${name}Partial[0];
  }
`;
}

/** The row this workgroup owns (uniform across the workgroup) and the thread's lane. */
const ROW_HEADER = `
    let row = index / ${ROW_THREADS};
    let lane = i32(localIndex);
    let live = row < uniforms.rows;
    let base = min(row, uniforms.rows - 1) * uniforms.cols;
`;

/**
 * softmax(scale · scores + mask) along rows of length `cols`; the mask [B, 1, 1, L] is indexed by
 * the row's batch (rows / rowsPerBatch). Vaswani et al. 2017, Eq. 1.
 */
export function attentionSoftmaxProgram(rows: number, cols: number, masked: boolean): WebGPUProgram {
  const maskTerm = masked ? ' + mask[(row / uniforms.rowsPerBatch) * uniforms.cols + col]' : '';
  const code = `${reduction('rowMax', 'max')}${reduction('rowSum', 'sum')}
  fn logit(row : i32, base : i32, col : i32) -> f32 {
    return uniforms.scale * scores[base + col]${maskTerm};
  }
  fn main(index : i32) {${ROW_HEADER}
    var top = -3.402823e+38;
    for (var col = lane; col < uniforms.cols; col = col + ${ROW_THREADS}) { top = max(top, logit(row, base, col)); }
    top = rowMax(top);
    var total = 0.0;
    for (var col = lane; col < uniforms.cols; col = col + ${ROW_THREADS}) { total = total + exp(logit(row, base, col) - top); }
    total = rowSum(total);
    if (live) {
      for (var col = lane; col < uniforms.cols; col = col + ${ROW_THREADS}) {
        result[base + col] = exp(logit(row, base, col) - top) / total;
      }
    }
  }`;
  const variables = masked ? ['scores', 'mask'] : ['scores'];
  return program(
    `finepruneAttentionSoftmax${masked ? 'Masked' : ''}`,
    variables,
    [rows, cols],
    rows,
    ROW_THREADS,
    'rows : i32, cols : i32, rowsPerBatch : i32, scale : f32,',
    code,
  );
}

/** The softmax gradient scale · p ⊙ (dy − Σ dy ⊙ p) per row. */
export function attentionSoftmaxGradProgram(rows: number, cols: number): WebGPUProgram {
  const code = `${reduction('rowSum', 'sum')}
  fn main(index : i32) {${ROW_HEADER}
    var dot = 0.0;
    for (var col = lane; col < uniforms.cols; col = col + ${ROW_THREADS}) { dot = dot + dy[base + col] * probabilities[base + col]; }
    dot = rowSum(dot);
    if (live) {
      for (var col = lane; col < uniforms.cols; col = col + ${ROW_THREADS}) {
        let i = base + col;
        result[i] = uniforms.scale * probabilities[i] * (dy[i] - dot);
      }
    }
  }`;
  return program(
    'finepruneAttentionSoftmaxGrad',
    ['probabilities', 'dy'],
    [rows, cols],
    rows,
    ROW_THREADS,
    'rows : i32, cols : i32, scale : f32,',
    code,
  );
}

/**
 * Statements that set `mean` (μ) and `inverse` (r = 1/√(σ² + ε)) of the row of x, in every thread of
 * the row's workgroup. Inlined into main: on Dawn's OpenGL backend over llvmpipe, a barrier reached
 * through two levels of function calls did not hold (lanes 8 and up read stale sums).
 */
const STATISTICS_REDUCTIONS = reduction('sumOfX', 'sum') + reduction('sumOfSquares', 'sum');
const ROW_STATISTICS = `
    var sumX = 0.0;
    for (var col = lane; col < uniforms.cols; col = col + ${ROW_THREADS}) { sumX = sumX + x[base + col]; }
    let mean = sumOfX(sumX) / f32(uniforms.cols);
    var squares = 0.0;
    for (var col = lane; col < uniforms.cols; col = col + ${ROW_THREADS}) {
      let centered = x[base + col] - mean;
      squares = squares + centered * centered;
    }
    let inverse = inverseSqrt(sumOfSquares(squares) / f32(uniforms.cols) + uniforms.epsilon);
`;

/** LayerNorm forward, γ ⊙ (x − μ)·r + β per row (Ba et al. 2016, Eq. 4). */
export function layerNormProgram(rows: number, cols: number): WebGPUProgram {
  const code = `${STATISTICS_REDUCTIONS}
  fn main(index : i32) {${ROW_HEADER}${ROW_STATISTICS}
    if (live) {
      for (var col = lane; col < uniforms.cols; col = col + ${ROW_THREADS}) {
        result[base + col] = (x[base + col] - mean) * inverse * gamma[col] + beta[col];
      }
    }
  }`;
  return program(
    'finepruneLayerNorm',
    ['x', 'gamma', 'beta'],
    [rows, cols],
    rows,
    ROW_THREADS,
    'rows : i32, cols : i32, epsilon : f32,',
    code,
  );
}

/** LayerNorm input gradient dx = r·(g − mean(g) − x̂·mean(g ⊙ x̂)), g = dy ⊙ γ. */
export function layerNormGradProgram(rows: number, cols: number): WebGPUProgram {
  const code = `${STATISTICS_REDUCTIONS}${reduction('sumOfG', 'sum')}${reduction('sumOfGX', 'sum')}
  fn main(index : i32) {${ROW_HEADER}${ROW_STATISTICS}
    var sumG = 0.0;
    var sumGX = 0.0;
    for (var col = lane; col < uniforms.cols; col = col + ${ROW_THREADS}) {
      let g = dy[base + col] * gamma[col];
      sumG = sumG + g;
      sumGX = sumGX + g * (x[base + col] - mean) * inverse;
    }
    let meanG = sumOfG(sumG) / f32(uniforms.cols);
    let meanGX = sumOfGX(sumGX) / f32(uniforms.cols);
    if (live) {
      for (var col = lane; col < uniforms.cols; col = col + ${ROW_THREADS}) {
        let xHat = (x[base + col] - mean) * inverse;
        result[base + col] = inverse * (dy[base + col] * gamma[col] - meanG - xHat * meanGX);
      }
    }
  }`;
  return program(
    'finepruneLayerNormGrad',
    ['dy', 'x', 'gamma'],
    [rows, cols],
    rows,
    ROW_THREADS,
    'rows : i32, cols : i32, epsilon : f32,',
    code,
  );
}

/**
 * The LayerNorm scale gradient dγ_j = Σ_rows dy ⊙ x̂, one column per workgroup; the row statistics
 * come from `statistics` [rows, 2] ({@link rowStatisticsProgram}).
 */
export function layerNormParamGradProgram(cols: number): WebGPUProgram {
  const code = `${reduction('rowSum', 'sum')}
  fn main(index : i32) {
    let column = index / ${ROW_THREADS};
    let lane = i32(localIndex);
    let col = min(column, uniforms.cols - 1);
    var total = 0.0;
    for (var r = lane; r < uniforms.rows; r = r + ${ROW_THREADS}) {
      let xHat = (x[r * uniforms.cols + col] - statistics[2 * r]) * statistics[2 * r + 1];
      total = total + dy[r * uniforms.cols + col] * xHat;
    }
    total = rowSum(total);
    if (column < uniforms.cols && lane == 0) { result[column] = total; }
  }`;
  return program(
    'finepruneLayerNormParamGrad',
    ['dy', 'x', 'statistics'],
    [cols],
    cols,
    ROW_THREADS,
    'rows : i32, cols : i32,',
    code,
  );
}

/** Row statistics [rows, 2] = (μ, r) of x, for {@link layerNormParamGradProgram}. */
export function rowStatisticsProgram(rows: number): WebGPUProgram {
  const code = `${STATISTICS_REDUCTIONS}
  fn main(index : i32) {${ROW_HEADER}${ROW_STATISTICS}
    if (live && lane == 0) {
      result[2 * row] = mean;
      result[2 * row + 1] = inverse;
    }
  }`;
  return program(
    'finepruneRowStatistics',
    ['x'],
    [rows, 2],
    rows,
    ROW_THREADS,
    'rows : i32, cols : i32, epsilon : f32,',
    code,
  );
}

/**
 * Φ(x) = ½(1 + erf(x/√2)) with erf from Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), the
 * approximation TF.js's own Erf kernels use, so the fused GELU matches the op chain.
 */
export const NORMAL_CDF = `
  fn normalCdf(value : f32) -> f32 {
    let z = value * 0.7071067811865476;
    let magnitude = abs(z);
    let t = 1.0 / (1.0 + 0.3275911 * magnitude);
    let poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
    let erfMagnitude = 1.0 - poly * exp(-magnitude * magnitude);
    return 0.5 * (1.0 + sign(z) * erfMagnitude);
  }
`;

/** GELU′(x) = Φ(x) + x·φ(x), φ(x) = exp(−x²/2)/√(2π), as `geluSlope`; includes {@link NORMAL_CDF}. */
export const GELU_SLOPE = `${NORMAL_CDF}
  fn geluSlope(value : f32) -> f32 {
    return normalCdf(value) + value * (exp(-0.5 * value * value) * 0.3989422804014327);
  }
`;

/** GELU(x) = x·Φ(x) (Hendrycks & Gimpel 2016, Eq. 1), element-wise. */
export function geluProgram(size: number): WebGPUProgram {
  const code = `${NORMAL_CDF}
  fn main(index : i32) {
    if (index < uniforms.size) {
      let value = x[index];
      result[index] = value * normalCdf(value);
    }
  }`;
  return {
    ...program('finepruneGelu', ['x'], [size], Math.ceil(size / FLAT_THREADS), FLAT_THREADS, '', code),
    size: true,
  };
}

/** The GELU gradient dy ⊙ (Φ(x) + x·φ(x)), φ(x) = exp(−x²/2)/√(2π). */
export function geluGradProgram(size: number): WebGPUProgram {
  const code = `${GELU_SLOPE}
  fn main(index : i32) {
    if (index < uniforms.size) {
      result[index] = dy[index] * geluSlope(x[index]);
    }
  }`;
  const flat = program(
    'finepruneGeluGrad',
    ['x', 'dy'],
    [size],
    Math.ceil(size / FLAT_THREADS),
    FLAT_THREADS,
    '',
    code,
  );
  return { ...flat, size: true };
}

/**
 * One output of an Adam step (Kingma & Ba 2015, Algorithm 1, with the bias correction folded into
 * η̂ and ε̂): `which` 0 gives w' = w − (m'·η̂/(√v' + ε̂) + w·λ), 1 gives m' = m·β₁ + g·(1−β₁), 2 gives
 * v' = v·β₂ + g²·(1−β₂). The operations and their order are those of `adam()` in `@fineprune/core`.
 */
export function adamProgram(size: number): WebGPUProgram {
  const code = `
  fn main(index : i32) {
    if (index < uniforms.size) {
      let g = gradient[index];
      let first = m[index] * uniforms.beta1 + g * uniforms.oneMinusBeta1;
      let second = v[index] * uniforms.beta2 + (g * g) * uniforms.oneMinusBeta2;
      if (uniforms.which == 1) {
        result[index] = first;
      } else if (uniforms.which == 2) {
        result[index] = second;
      } else {
        let w = variable[index];
        let update = (first * uniforms.stepSize) / (sqrt(second) + uniforms.epsilonHat) + w * uniforms.decay;
        result[index] = w - update;
      }
    }
  }`;
  const flat = program(
    'finepruneAdam',
    ['variable', 'm', 'v', 'gradient'],
    [size],
    Math.ceil(size / FLAT_THREADS),
    FLAT_THREADS,
    'beta1 : f32, oneMinusBeta1 : f32, beta2 : f32, oneMinusBeta2 : f32, stepSize : f32, epsilonHat : f32, decay : f32, which : i32,',
    code,
  );
  return { ...flat, size: true };
}
