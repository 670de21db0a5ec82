/**
 * The WGSL program of {@link SPARSE_MAT_MUL} for @tensorflow/tfjs-backend-webgpu, in the shape its
 * `runWebGPUProgram` takes (the backend writes the bindings, the uniforms and `_start`; this file
 * writes `main`).
 *
 * One workgroup of 64 invocations per group of four sorted rows and per tile of batch elements:
 * invocation i serves lane i mod 4 (adjacent invocations read adjacent values and offsets) and walks
 * every 16th nonzero of that lane's row, keeping one partial sum per batch element of the tile; the
 * 16 partial sums of a lane are then added in workgroup memory by a tree of halvings. The workgroup
 * index is rebuilt from all three dispatch dimensions, because the backend folds a 1-D dispatch
 * longer than 65,535 workgroups into two or three dimensions; workgroups past the last group do the
 * barriers but write nothing.
 */

/** Invocations per workgroup: 4 lanes × 16 strands. */
const WORKGROUP = 64;
const STRANDS = 16;

/** The batch elements one workgroup handles: the batch, up to 8. */
export function batchTile(batch: number): number {
  return batch <= 1 ? 1 : batch <= 2 ? 2 : batch <= 4 ? 4 : 8;
}

/** A program object as `WebGPUBackend.runWebGPUProgram` expects it. */
export interface SpmmProgram {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  uniforms: string;
  getUserCode(): string;
}

/**
 * The program for a [batch, outputSize] output over `groups` row groups.
 *
 * @param batch - B
 * @param outputSize - N
 * @param groups - ⌈N / 4⌉
 * @param hasBias - whether a `bias` input follows the layout
 */
export function spmmProgram(
  batch: number,
  outputSize: number,
  groups: number,
  hasBias: boolean,
): SpmmProgram {
  const tile = batchTile(batch);
  const chunks = Math.ceil(batch / tile);
  return {
    variableNames: ['x', 'values', 'offsets', 'structure', ...(hasBias ? ['bias'] : [])],
    outputShape: [batch, outputSize],
    shaderKey: `finepruneSparseMatMul_${tile}_${hasBias}`,
    dispatchLayout: { x: [0, 1] },
    dispatch: [groups * chunks, 1, 1],
    workgroupSize: [WORKGROUP, 1, 1],
    uniforms:
      'inputSize : i32, outputSize : i32, groups : i32, batch : i32, chunks : i32, rowOrder : i32, rowLengths : i32,',
    getUserCode: () => userCode(tile, hasBias),
  };
}

function userCode(tile: number, hasBias: boolean): string {
  const perElement = (body: string) => `for (var b = 0; b < ${tile}; b = b + 1) { ${body} }`;
  return `
  var<workgroup> partials : array<f32, ${WORKGROUP * tile}>;

  fn main(index : i32) {
    let linear = i32(workgroupId.z * numWorkgroups.x * numWorkgroups.y + workgroupId.y * numWorkgroups.x + workgroupId.x);
    let inRange = linear < uniforms.groups * uniforms.chunks;
    let group = linear % uniforms.groups;
    let firstElement = (linear / uniforms.groups) * ${tile};
    let lane = i32(localIndex) % 4;
    let strand = i32(localIndex) / 4;
    let sorted = group * 4 + lane;
    var length = 0;
    if (inRange) {
      length = structure[uniforms.rowLengths + sorted];
    }
    let first = structure[group] * 4 + lane;
    var sums : array<f32, ${tile}>;
    for (var j = strand; j < length; j = j + ${STRANDS}) {
      let entry = first + j * 4;
      let weight = values[entry];
      let column = offsets[entry] >> 2u;
      ${perElement(`
        let element = firstElement + b;
        if (element < uniforms.batch) {
          sums[b] = sums[b] + weight * x[element * uniforms.inputSize + column];
        }`)}
    }
    ${perElement(`partials[i32(localIndex) * ${tile} + b] = sums[b];`)}
    workgroupBarrier();
    for (var width = ${STRANDS / 2}; width > 0; width = width / 2) {
      if (strand < width) {
        ${perElement(`partials[i32(localIndex) * ${tile} + b] = partials[i32(localIndex) * ${tile} + b] + partials[(i32(localIndex) + width * 4) * ${tile} + b];`)}
      }
      workgroupBarrier();
    }
    if (inRange && strand == 0) {
      let output = structure[uniforms.rowOrder + sorted];
      if (output >= 0) {
        ${perElement(`
          let element = firstElement + b;
          if (element < uniforms.batch) {
            result[element * uniforms.outputSize + output] = partials[lane * ${tile} + b]${hasBias ? ' + bias[output]' : ''};
          }`)}
      }
    }
  }
  `;
}
