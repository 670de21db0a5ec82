/**
 * The batch types shared by the classification batches (`encode.ts`) and the masked-LM batches
 * (`mlm.ts`), in a file of their own so that neither module imports the other.
 */

import type * as tf from '@tensorflow/tfjs-core';

/**
 * Encoder inputs: three int32 `[B, L]` tensors. A type alias (not an interface) so that it is a
 * `Record<string, tf.Tensor>`, i.e. a `ModelInput` of `@fineprune/core`.
 *
 * @example
 * ```ts
 * const { inputIds, tokenTypeIds, attentionMask }: TextInputs = batch.x;
 * ```
 */
export type TextInputs = {
  /** Token ids, int32 `[B, L]`, `[CLS]` first, `[PAD]` (0) after the end. */
  inputIds: tf.Tensor2D;
  /** Segment ids, int32 `[B, L]` (0 for single texts). */
  tokenTypeIds: tf.Tensor2D;
  /** 1 on real tokens, 0 on padding, int32 `[B, L]`. */
  attentionMask: tf.Tensor2D;
};

/**
 * A classification batch: `x` the encoder inputs, `y` int32 labels `[B]`. Compatible with
 * `Batch` of `@fineprune/core`. The caller disposes the tensors.
 *
 * @example
 * ```ts
 * const batch: TextBatch = source.batch(0);
 * tf.dispose([batch.x.inputIds, batch.x.tokenTypeIds, batch.x.attentionMask, batch.y]);
 * ```
 */
export type TextBatch = {
  x: TextInputs;
  y: tf.Tensor1D;
};

/**
 * A masked-LM batch. `x`: the corrupted inputs; `y = [maskedPositions int32 [B, P], maskedIds
 * int32 [B, P] (the original ids), maskedWeights float32 [B, P]]`, padded entries 0 / 0 / 0.
 *
 * @example
 * ```ts
 * const { x, y: [positions, ids, weights] }: MlmBatch = source.batch(0);
 * ```
 */
export type MlmBatch = {
  x: TextInputs;
  y: [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
};
