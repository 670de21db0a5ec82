/**
 * Top-count masks computed on the GPU: the masks of `topCountMasks` of `@fineprune/tensor` (exactly
 * `keep` ones over all the score tensors together; ties to the lower tensor, then the lower index)
 * without reading the scores back, so a learned-score step (MvP, Top-v) keeps the GPU's pipeline
 * full. A radix select in WGSL finds the k-th largest score's key in four passes and the last kept
 * tie's position in up to four more; the state stays in an int32 tensor on the GPU.
 */

import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { histogramProgram, maskProgram, startProgram, walkProgram } from './selection-programs';

type Uniforms = Array<{ type: string; data: number[] }>;

interface ProgramRunner {
  runWebGPUProgram(
    program: WebGPUProgram,
    inputs: tf.TensorInfo[],
    outputDtype: tf.DataType,
    uniforms?: Uniforms,
    output?: tf.TensorInfo,
  ): tf.TensorInfo;
  disposeData(dataId: tf.DataId): boolean;
}

const int = (value: number) => ({ type: 'int32', data: [value] });

/** The bits fixed by the passes above a byte at `shift` of a 32-bit word, as an int32. */
function knownBits(shift: number): number {
  return shift >= 24 ? 0 : ~(2 ** (shift + 8) - 1);
}

/** Shifts of the 8-bit passes over an index below `total`, most significant byte first. */
export function indexShifts(total: number): number[] {
  const bits = Math.max(1, Math.ceil(Math.log2(Math.max(total, 2))));
  const bytes = Math.ceil(bits / 8);
  return Array.from({ length: bytes }, (_, pass) => 8 * (bytes - 1 - pass));
}

/**
 * Top-count masks of float32 score tensors on the `'webgpu'` backend, computed on the GPU with no
 * read-back. Returns `undefined` when the route does not apply (another backend, a dtype other than
 * float32, an empty list, or keep not an integer in [0, n]); NaN scores are not detected here (they
 * rank above +∞), unlike the cpu selection, which throws on them.
 *
 * @param scores - float32 score tensors, in the selection's order (one for a local selection)
 * @param keep - how many ones the masks hold together
 * @returns one 0/1 float32 mask per score tensor (owned by the caller), or `undefined`
 *
 * @example
 * ```ts
 * const [mask] = gpuTopCountMasks([scores], 1000)!;
 * ```
 */
export function gpuTopCountMasks(scores: readonly tf.Tensor[], keep: number): tf.Tensor[] | undefined {
  if (tf.getBackend() !== 'webgpu' || scores.length === 0) return undefined;
  if (scores.some((tensor) => tensor.dtype !== 'float32' || tensor.isDisposed)) return undefined;
  const total = scores.reduce((sum, tensor) => sum + tensor.size, 0);
  if (!(Number.isInteger(keep) && keep >= 0 && keep <= total) || total >= 2 ** 31) return undefined;
  if (keep === 0 || keep === total) return scores.map((tensor) => tf.fill(tensor.shape, keep === 0 ? 0 : 1));
  const backend = tf.backend() as unknown as ProgramRunner;
  return tf.tidy(() => {
    const flat =
      scores.length === 1 ? scores[0]! : tf.concat(scores.map((tensor) => tf.reshape(tensor, [-1])));
    const work = backend.runWebGPUProgram(startProgram(), [], 'int32', [int(keep)]);
    const histogram = histogramProgram(total);
    const walk = walkProgram();
    const pass = (shift: number, tiePass: number) => {
      const uniforms = [int(total), int(shift), int(knownBits(shift)), int(tiePass)];
      backend.runWebGPUProgram(histogram, [flat], 'int32', uniforms, work);
      backend.runWebGPUProgram(walk, [], 'int32', [int(shift), int(tiePass)], work);
    };
    for (const shift of [24, 16, 8, 0]) pass(shift, 0);
    for (const shift of indexShifts(total)) pass(shift, 1);
    let offset = 0;
    const masks = scores.map((tensor) => {
      const mask = backend.runWebGPUProgram(maskProgram(tensor.size), [tensor, work], 'float32', [
        int(offset),
      ]);
      offset += tensor.size;
      return tf.reshape(tf.engine().makeTensorFromTensorInfo(mask), tensor.shape);
    });
    backend.disposeData(work.dataId);
    return masks;
  });
}
