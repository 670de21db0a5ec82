/**
 * Shrinking on export: a pruned TF.js layers model written without its pruned neurons and filters
 * (`shrink` of @fineprune/layers), and the record of what it kept.
 */

import { ErrorCodes, FinepruneError, type FinepruneErrorCode } from '@fineprune/core';
import { type LayersPrunableModel, shrink } from '@fineprune/layers';
import { type BertModel, shrinkBertModel } from '@fineprune/transformers';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { ShrinkRecord } from './run-record';

/**
 * A shrunk model ready to save, and what `run.json` / `export --json` say about it.
 *
 * @example
 * ```ts
 * const { model, record } = await shrinkForExport(prunable, refusal);
 * ```
 */
export interface ShrunkExport {
  /** A new plain `tf.LayersModel`; the caller disposes it. */
  model: tfl.LayersModel;
  record: ShrinkRecord;
}

/** How a refusal is worded where shrink cannot apply: the error code and the option to blame. */
export interface ShrinkRefusal {
  code: FinepruneErrorCode;
  /** `export.shrink` (a recipe) or `--shrink` (the command line). */
  option: string;
  fix: string;
}

/** Bytes of float32 weights. */
const FLOAT32_BYTES = 4;

/**
 * The refusal of `export.shrink` in a recipe.
 *
 * @example
 * ```ts
 * refuseUnshrinkable(prunable, RECIPE_SHRINK);
 * ```
 */
export const RECIPE_SHRINK: ShrinkRefusal = {
  code: ErrorCodes.INVALID_RECIPE,
  option: 'export.shrink',
  fix: 'Drop export.shrink, or prune a model with Dense or Conv2D layers between its input and its output.',
};

/**
 * Refuses a model whose `structures()` are empty (nothing `shrink` could remove), naming the layers
 * `skippedStructures()` left out and why.
 *
 * @returns the skipped structures
 * @throws FinepruneError with `refusal.code` when the model has no structures
 *
 * @example
 * ```ts
 * refuseUnshrinkable(prunable, RECIPE_SHRINK); // throws INVALID_RECIPE for a single Dense layer
 * ```
 */
export function refuseUnshrinkable(
  prunable: LayersPrunableModel,
  refusal: ShrinkRefusal,
): Array<{ layer: string; reason: string }> {
  const skipped = prunable.skippedStructures().map(({ layer, reason }) => ({ layer, reason }));
  if (prunable.structures().length > 0) return skipped;
  const why = skipped.map(({ layer, reason }) => `${layer}: ${reason}`).join('; ');
  throw new FinepruneError({
    code: refusal.code,
    message: `${refusal.option}: the model has no neurons or filters that can be removed${why ? ` (${why})` : ''}.`,
    fix: refusal.fix,
    details: { path: refusal.option, skipped },
  });
}

/**
 * Removes the pruned units of a layers model physically (masks applied first), and records per
 * structure the units kept, the structures left whole (with why) and the parameters and float32
 * bytes before and after.
 *
 * @throws FinepruneError with `refusal.code` when the model has no structures to shrink
 *
 * @example
 * ```ts
 * const { model, record } = await shrinkForExport(prunable, RECIPE_SHRINK);
 * console.log(record.structures); // [{ name: 'dense_1/neurons', kind: 'neuron', count: 300, kept: 120 }, …]
 * model.dispose();
 * ```
 */
export async function shrinkForExport(
  prunable: LayersPrunableModel,
  refusal: ShrinkRefusal,
): Promise<ShrunkExport> {
  const skipped = refuseUnshrinkable(prunable, refusal);
  const parametersBefore = prunable.model.countParams();
  const { model, structures } = await shrink(prunable);
  const parametersAfter = model.countParams();
  return {
    model,
    record: {
      structures: structures.map(({ name, kind, count, kept }) => ({ name, kind, count, kept })),
      skipped,
      parametersBefore,
      parametersAfter,
      bytesBefore: parametersBefore * FLOAT32_BYTES,
      bytesAfter: parametersAfter * FLOAT32_BYTES,
    },
  };
}

/** Entries of every variable of a BERT model (embeddings, encoder, pooler, head). */
function bertEntries(model: BertModel): number {
  return model.variables().reduce((total, entry) => total + entry.variable.size, 0);
}

/**
 * Removes the attention heads and feed-forward neurons that a pruned BERT model no longer reads
 * (`shrinkBertModel` of @fineprune/transformers), and records per layer the heads and neurons kept
 * and the model's parameters and float32 bytes before and after. Save the result with
 * `saveHuggingFaceDirectory`: config.json then records the per-layer sizes.
 *
 * @example
 * ```ts
 * const { model: small, record } = await shrinkBertForExport(model);
 * console.log(record.structures); // [{ name: 'layer_0/attention/heads', kind: 'head', count: 12, kept: 7 }, …]
 * small.dispose();
 * ```
 */
export async function shrinkBertForExport(
  model: BertModel,
): Promise<{ model: BertModel; record: ShrinkRecord }> {
  const { model: small, report } = await shrinkBertModel(model);
  const parametersBefore = bertEntries(model);
  const parametersAfter = bertEntries(small);
  return {
    model: small,
    record: {
      structures: report.layers.flatMap((layer, index) => [
        {
          name: `layer_${index}/attention/heads`,
          kind: 'head',
          count: layer.heads.before,
          kept: layer.heads.kept,
        },
        {
          name: `layer_${index}/ffn/neurons`,
          kind: 'neuron',
          count: layer.neurons.before,
          kept: layer.neurons.kept,
        },
      ]),
      skipped: [],
      parametersBefore,
      parametersAfter,
      bytesBefore: parametersBefore * FLOAT32_BYTES,
      bytesAfter: parametersAfter * FLOAT32_BYTES,
    },
  };
}
