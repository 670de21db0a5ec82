/**
 * Seeded dropout masks, drawn in WebAssembly on `wasm`.
 *
 * The encoder's dropout draws one xoshiro128** number per entry (2.4 million per training step of the
 * benchmark encoder), a large share of the step in JavaScript (bench/README.md, "Encoder step"). On `wasm` the same generator runs as a loop over i32 locals that writes
 * the mask straight into the heap, so the mask is bit-identical to the JavaScript one (same seeding by
 * `createRandom`, same draws, same comparison).
 */

import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError } from './errors';
import { fusedRoute, moduleFunctions, runWasmKernel } from './fused-module';
import { Locals } from './simd-math';
import { createRandom } from './random';
import { F32, f32Const, get, I32, i32Const, loopWhileBelow, memarg, op, set } from './wasm-binary';
import { wasmHeapOf } from './wasm-heap';
import { xoshiroStep } from './wasm-xoshiro';

/** The fused dropout-mask kernel's name (registered for `wasm` on first use). */
export const FUSED_DROPOUT_MASK_KERNEL = 'FinepruneDropoutMask';

type MaskFunction = (
  out: number,
  bytes: number,
  s0: number,
  s1: number,
  s2: number,
  s3: number,
  limit: number,
  scale: number,
) => void;

const functionsFor = moduleFunctions<{ dropoutMask: MaskFunction }>(() => {
  const [out, bytes, s0, s1, s2, s3, limit, scale] = [0, 1, 2, 3, 4, 5, 6, 7];
  const locals = new Locals(8);
  const [cursor, t, draw] = locals.i32s(3);
  const step = [
    ...xoshiroStep([s0, s1, s2, s3], t, draw),
    // mask = draw < rate·2³² ? 0 : 1/(1 − rate)
    ...get(out),
    ...get(cursor),
    op.i32Add,
    ...f32Const(0),
    ...get(scale),
    ...get(draw),
    ...get(limit),
    op.i32LtU,
    op.select,
    op.f32Store,
    ...memarg(),
  ];
  return [
    {
      name: 'dropoutMask',
      params: [I32, I32, I32, I32, I32, I32, I32, F32],
      results: [],
      locals: locals.types,
      body: [...i32Const(0), ...set(cursor), ...loopWhileBelow(cursor, bytes, 4, step)],
    },
  ];
});

function dropoutMaskKernel({ backend, attrs }: { backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const heap = wasmHeapOf(backend)!;
  const shape = attrs!.shape as number[];
  const [s0, s1, s2, s3] = attrs!.state as number[];
  const out = heap.backend.makeOutput(shape, 'float32');
  const bytes = tf.util.sizeFromShape(shape) * 4;
  functionsFor(heap.memory)!.dropoutMask(
    heap.offsetOf(out),
    bytes,
    s0!,
    s1!,
    s2!,
    s3!,
    attrs!.limit as number,
    attrs!.scale as number,
  );
  return out;
}

/**
 * The inverted-dropout mask of `shape` (Srivastava et al. 2014): each entry 0 with probability `rate`,
 * else 1/(1 − rate), from one `createRandom(seed)` draw per entry (xoshiro128**; dropped when the
 * 32-bit draw is below rate·2³²), so a seed gives the same mask on every backend. Drawn in
 * WebAssembly on `wasm` (unless `FINEPRUNE_FUSED=0`), in JavaScript elsewhere; identical either way.
 *
 * @param shape - the mask's shape
 * @param rate - the drop probability, in [0, 1)
 * @param seed - a 32-bit seed
 * @returns a float32 tensor of 0 and 1/(1 − rate)
 *
 * @example
 * ```ts
 * const dropped = tf.mul(hidden, dropoutMask(hidden.shape, 0.1, random.nextUint32()));
 * ```
 */
export function dropoutMask(shape: number[], rate: number, seed: number): tf.Tensor {
  if (!(rate >= 0 && rate < 1)) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `A dropout rate must be in [0, 1), got ${rate}.`,
      fix: 'Use a rate such as 0.1, or 0 for no dropout.',
    });
  }
  const random = createRandom(seed);
  const limit = Math.floor(rate * 4294967296); // drop when the uniform 32-bit draw is below rate·2³²
  const scale = 1 / (1 - rate);
  const size = tf.util.sizeFromShape(shape);
  if (size > 0 && fusedRoute(functionsFor, []) !== undefined) {
    const state = random.state();
    return runWasmKernel(
      FUSED_DROPOUT_MASK_KERNEL,
      dropoutMaskKernel,
      {},
      { shape, state, limit: limit | 0, scale },
    )[0]!;
  }
  const values = new Float32Array(size);
  for (let index = 0; index < size; index += 1) values[index] = random.nextUint32() < limit ? 0 : scale;
  return tf.tensor(values, shape, 'float32');
}
