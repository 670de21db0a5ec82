/**
 * WGSL programs of the top-count selection on the GPU: a radix select of the k-th largest score in
 * four 8-bit passes over an order-preserving key of each float32 score, then a radix select of the
 * last kept tie's index, then one pass writing the mask. The selection state lives in a small int32
 * tensor on the GPU (`work`), so nothing is read back.
 *
 * `work` layout (int32): [0, 256) the histogram of the current pass, then STATE_* below.
 */

import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';

/** Bins per radix pass (8 bits). */
export const BINS = 256;
/** Index in `work` of the key prefix found so far (the threshold's key once the score passes end). */
const STATE_PREFIX = BINS;
/** Index of the rank still to find inside the current prefix. */
const STATE_REMAINING = BINS + 1;
/** Index of the tie-index prefix found so far (the last kept tie's index once the passes end). */
const STATE_TIE_INDEX = BINS + 2;
/** Length of `work`. */
export const WORK_LENGTH = BINS + 4;

const HISTOGRAM_THREADS = 256;

/**
 * The order-preserving unsigned key of a float32: larger scores give larger keys, −0 and +0 the
 * same key (they compare equal on the cpu too).
 */
const SCORE_KEY = `
  fn scoreKey(value : f32) -> u32 {
    var bits = bitcast<u32>(value);
    if (value == 0.0) { bits = 0u; }
    if ((bits & 0x80000000u) != 0u) { return ~bits; }
    return bits | 0x80000000u;
  }
`;

/** Scores each histogram thread bins (strided by the workgroup size, so reads stay coalesced). */
const PER_THREAD = 16;

/**
 * Adds the pass's histogram of the scores that match the prefix found so far. Score passes
 * (`tiePass` 0) bin the key's byte at `shift`; tie passes (1) bin the index's byte at `shift` among the
 * scores whose key equals the threshold. `known` masks the bits the earlier passes fixed. A thread
 * counts runs of equal bins in a register and adds a run at a time: in the first passes most scores
 * share a bin, and one atomic per score made the bin the bottleneck (650 ms for 393k scores on
 * llvmpipe).
 */
export function histogramProgram(size: number): WebGPUProgram {
  const code = `${SCORE_KEY}
  var<workgroup> bins : array<atomic<u32>, ${BINS}>;
  fn binOf(index : i32, known : u32, shift : u32, prefix : u32, tieIndexPrefix : u32) -> i32 {
    if (index >= uniforms.total) { return -1; }
    let key = scoreKey(scores[index]);
    if (uniforms.tiePass == 0) {
      if ((key & known) != (prefix & known)) { return -1; }
      return i32((key >> shift) & 255u);
    }
    let position = u32(index);
    if (key != prefix || (position & known) != (tieIndexPrefix & known)) { return -1; }
    return i32((position >> shift) & 255u);
  }
  fn main(index : i32) {
    let lane = i32(localIndex);
    atomicStore(&bins[lane], 0u);
    workgroupBarrier();
    let known = bitcast<u32>(uniforms.known);
    let shift = u32(uniforms.shift);
    let prefix = bitcast<u32>(atomicLoad(&result[${STATE_PREFIX}]));
    let tieIndexPrefix = bitcast<u32>(atomicLoad(&result[${STATE_TIE_INDEX}]));
    let first = (index - lane) * ${PER_THREAD} + lane;
    var runBin = -1;
    var runLength = 0u;
    for (var step = 0; step < ${PER_THREAD}; step = step + 1) {
      let bin = binOf(first + step * ${HISTOGRAM_THREADS}, known, shift, prefix, tieIndexPrefix);
      if (bin != runBin) {
        if (runBin >= 0) { atomicAdd(&bins[runBin], runLength); }
        runBin = bin;
        runLength = 0u;
      }
      runLength = runLength + 1u;
    }
    if (runBin >= 0) { atomicAdd(&bins[runBin], runLength); }
    workgroupBarrier();
    let count = atomicLoad(&bins[lane]);
    if (count > 0u) { atomicAdd(&result[lane], i32(count)); }
  }`;
  return {
    variableNames: ['scores'],
    outputShape: [WORK_LENGTH],
    shaderKey: 'finepruneSelectHistogram',
    dispatchLayout: { x: [0] },
    dispatch: [Math.ceil(size / (HISTOGRAM_THREADS * PER_THREAD)), 1, 1],
    workgroupSize: [HISTOGRAM_THREADS, 1, 1],
    atomic: true,
    uniforms: 'total : i32, shift : i32, known : i32, tiePass : i32,',
    getUserCode: () => code,
  };
}

/**
 * One thread walks the histogram: score passes from the top bin down (largest keys first), tie passes
 * from the bottom up (lowest indices first), to the bin that holds the rank still to find; it fixes
 * that byte of the prefix, lowers the rank, and clears the histogram for the next pass. Before the
 * first tie pass the remaining rank is the number of ties to keep.
 */
export function walkProgram(): WebGPUProgram {
  const code = `
  fn main(index : i32) {
    if (index != 0) { return; }
    let shift = u32(uniforms.shift);
    var remaining = atomicLoad(&result[${STATE_REMAINING}]);
    var seen = 0;
    var chosen = 0u;
    for (var step = 0; step < ${BINS}; step = step + 1) {
      let bin = select(${BINS - 1} - step, step, uniforms.tiePass == 1);
      let count = atomicLoad(&result[bin]);
      if (seen + count >= remaining) { chosen = u32(bin); break; }
      seen = seen + count;
    }
    atomicStore(&result[${STATE_REMAINING}], remaining - seen);
    let slot = select(${STATE_PREFIX}, ${STATE_TIE_INDEX}, uniforms.tiePass == 1);
    let prefix = bitcast<u32>(atomicLoad(&result[slot]));
    atomicStore(&result[slot], bitcast<i32>(prefix | (chosen << shift)));
    for (var bin = 0; bin < ${BINS}; bin = bin + 1) { atomicStore(&result[bin], 0); }
  }`;
  return {
    variableNames: [],
    outputShape: [WORK_LENGTH],
    shaderKey: 'finepruneSelectWalk',
    dispatchLayout: { x: [0] },
    dispatch: [1, 1, 1],
    workgroupSize: [1, 1, 1],
    atomic: true,
    uniforms: 'shift : i32, tiePass : i32,',
    getUserCode: () => code,
  };
}

/**
 * Sets up `work` for a selection of the `keep` largest: histogram zero, prefixes zero, rank `keep`.
 */
export function startProgram(): WebGPUProgram {
  const code = `
  fn main(index : i32) {
    if (index != 0) { return; }
    for (var slot = 0; slot < ${WORK_LENGTH}; slot = slot + 1) { atomicStore(&result[slot], 0); }
    atomicStore(&result[${STATE_REMAINING}], uniforms.keep);
  }`;
  return {
    variableNames: [],
    outputShape: [WORK_LENGTH],
    shaderKey: 'finepruneSelectStart',
    dispatchLayout: { x: [0] },
    dispatch: [1, 1, 1],
    workgroupSize: [1, 1, 1],
    atomic: true,
    uniforms: 'keep : i32,',
    getUserCode: () => code,
  };
}

/**
 * mask = [key > threshold] or [key = threshold and index ≤ the last kept tie's index], for one score
 * tensor that starts at `offset` in the selection's order (tensor after tensor).
 */
export function maskProgram(size: number): WebGPUProgram {
  const code = `${SCORE_KEY}
  fn main(index : i32) {
    if (index < uniforms.size) {
      let key = scoreKey(scores[index]);
      let threshold = bitcast<u32>(work[${STATE_PREFIX}]);
      let lastTie = bitcast<u32>(work[${STATE_TIE_INDEX}]);
      let kept = key > threshold || (key == threshold && u32(index + uniforms.offset) <= lastTie);
      result[index] = select(0.0, 1.0, kept);
    }
  }`;
  return {
    variableNames: ['scores', 'work'],
    outputShape: [size],
    shaderKey: 'finepruneSelectMask',
    dispatchLayout: { x: [0] },
    dispatch: [Math.ceil(size / HISTOGRAM_THREADS), 1, 1],
    workgroupSize: [HISTOGRAM_THREADS, 1, 1],
    size: true,
    uniforms: 'offset : i32,',
    getUserCode: () => code,
  };
}
