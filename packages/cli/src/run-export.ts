import { existsSync } from 'node:fs';
import path from 'node:path';
import { ErrorCodes, FinepruneError } from '@fineprune/core';
import { fileSystem, type LayersPrunableModel, saveStripped, strip } from '@fineprune/layers';
import { compactBytesOfModel } from '@fineprune/sparse';
import type { Recipe } from '@fineprune/recipes';
import type { BertModel } from '@fineprune/transformers';
import type * as tfl from '@tensorflow/tfjs-layers';
import { saveHuggingFaceDirectory } from '@fineprune/transformers/node';
import { compactBertBytes } from './export-bert';
import { sizeCheckedHandler, writeCompactExport } from './export-formats';
import { RECIPE_SHRINK, shrinkBertForExport, shrinkForExport } from './export-shrink';
import type { ModelSource } from './model-source';
import type { ShrinkRecord } from './run-record';

/**
 * What an export writer gets: the trained model (of the kind the run opened) and the recipe's
 * export settings.
 *
 * @example
 * ```ts
 * const target: ExportTarget = { kind: 'bert', model, dtype: 'F16' };
 * ```
 */
export type ExportTarget =
  | {
      kind: 'layers';
      model: LayersPrunableModel;
      dtype: 'F32' | 'F16';
      /** The model file the run started from: a quantized one exports in the same quantization. */
      source?: ModelSource | undefined;
      /** The shrunk model (`export.shrink`), written in place of the stripped one. */
      shrunk?: tfl.LayersModel | undefined;
    }
  | { kind: 'bert'; model: BertModel; dtype: 'F32' | 'F16' };

/**
 * Writes a trained, pruned model into a directory in one format. A writer refuses models it cannot
 * write with `INVALID_RECIPE` (path `export.format`).
 *
 * @example
 * ```ts
 * const writer: ExportWriter = async (target, directory) => { … };
 * ```
 */
export type ExportWriter = (target: ExportTarget, directory: string) => Promise<void>;

function unsupported(format: string, kind: string, fix: string): FinepruneError {
  return new FinepruneError({
    code: ErrorCodes.INVALID_RECIPE,
    message: `export.format: ${format} cannot hold a ${kind === 'bert' ? 'BERT (huggingFace)' : 'TF.js layers'} model.`,
    fix,
    details: { path: 'export.format' },
  });
}

/**
 * The model writers by `export.format`. `tfjs`: the stripped TF.js layers model (masks applied,
 * scores dropped; `tf.loadLayersModel` loads it). `huggingface`: config.json + model.safetensors
 * (W ⊙ M, Linear weights [out, in]; `transformers` loads it). `sparse`: one compact
 * `model.fpsparse` of `@fineprune/sparse` (float32 values, float16 with `dtype: F16`) — a layers
 * model stripped, a BERT model in its Hugging Face layout with only the weights its masks keep. A new format
 * is one more entry here; `export.format` in the recipe schema names it.
 *
 * @example
 * ```ts
 * await EXPORT_WRITERS.huggingface!({ kind: 'bert', model, dtype: 'F32' }, 'out/run/model');
 * ```
 */
export const EXPORT_WRITERS: Record<string, ExportWriter> = {
  tfjs: async (target, directory) => {
    if (target.kind !== 'layers')
      throw unsupported(
        'tfjs',
        target.kind,
        'Use export.format: huggingface (or auto) for a huggingFace model.',
      );
    const handler = fileSystem(directory);
    const quantization = target.source?.quantization;
    const checked =
      quantization && target.source
        ? sizeCheckedHandler(handler, {
            values: quantization,
            referenceBytes: target.source.bytes,
            allowLarger: true,
          })
        : handler;
    if (target.shrunk) await target.shrunk.save(checked);
    else await saveStripped(target.model, checked);
  },
  sparse: async (target, directory) => {
    // After a run, the export is written even when not smaller than the model it came from.
    const options = { values: target.dtype === 'F16' ? 'float16' : 'float32', allowLarger: true } as const;
    if (target.kind === 'bert') {
      await writeCompactExport(directory, await compactBertBytes(target.model, options));
      return;
    }
    // A shrunk model is written as it is: the compact export of the smaller dense model.
    const plain = target.shrunk ?? (await strip(target.model));
    try {
      await writeCompactExport(directory, await compactBytesOfModel(plain, options));
    } finally {
      if (plain !== target.shrunk) plain.dispose();
    }
  },
  huggingface: async (target, directory) => {
    if (target.kind !== 'bert')
      throw unsupported(
        'huggingface',
        target.kind,
        'Use export.format: tfjs (or auto) for a TF.js layers model.',
      );
    if (existsSync(path.join(directory, 'model.json')))
      throw new FinepruneError({
        code: ErrorCodes.IO_FAILED,
        message: `${directory} holds a TF.js model (model.json); a Hugging Face export is not written over it.`,
        fix: 'Export to another directory (export.directory or --out).',
        details: { directory },
      });
    await saveHuggingFaceDirectory(target.model, directory, { dtype: target.dtype });
  },
};

/**
 * The export format a recipe asks for: `export.format`, where `auto` is `huggingface` for a
 * `model.huggingFace` model and `tfjs` otherwise.
 *
 * @example
 * ```ts
 * exportFormat(recipe); // 'tfjs'
 * ```
 */
export function exportFormat(recipe: Recipe): string {
  const format = recipe.export.format;
  if (format !== 'auto') return format;
  return 'huggingFace' in recipe.model ? 'huggingface' : 'tfjs';
}

/**
 * Writes the model of a run in the recipe's export format; with `export.shrink`, the physically
 * smaller model in place of the stripped one: a layers model without its pruned neurons and filters
 * (`shrink` of @fineprune/layers) in `tfjs` or `sparse` form, a BERT model without its pruned heads
 * and feed-forward neurons (`shrinkBertModel`) in the Hugging Face layout, config.json recording
 * the per-layer sizes.
 *
 * @returns what shrinking removed (with `export.shrink`), else undefined
 * @throws FinepruneError `INVALID_RECIPE` for a format that cannot hold the model, or `export.shrink`
 *   on a model without structures; `IO_FAILED` when writing fails
 *
 * @example
 * ```ts
 * const shrunk = await exportRunModel(recipe, { kind: 'layers', model: prunable, dtype: 'F32' }, 'out/run/model');
 * ```
 */
export async function exportRunModel(
  recipe: Recipe,
  target: ExportTarget,
  directory: string,
): Promise<ShrinkRecord | undefined> {
  const format = exportFormat(recipe);
  const writer = EXPORT_WRITERS[format];
  if (!writer)
    throw new FinepruneError({
      code: ErrorCodes.INVALID_RECIPE,
      message: `export.format: no writer for ${JSON.stringify(format)}.`,
      fix: `Use one of ${Object.keys(EXPORT_WRITERS).join(', ')} (or auto).`,
      details: { path: 'export.format' },
    });
  if (!recipe.export.shrink) {
    await writer(target, directory);
    return undefined;
  }
  if (target.kind === 'bert') return exportShrunkBert(format, writer, target, directory);
  const { model, record } = await shrinkForExport(target.model, RECIPE_SHRINK);
  try {
    await writer({ ...target, shrunk: model }, directory);
  } finally {
    model.dispose();
  }
  return record;
}

/**
 * Writes a BERT model shrunk (fewer heads and feed-forward neurons per layer) in the Hugging Face
 * layout. The compact sparse file holds the uniform layout only, so `sparse` is refused.
 */
async function exportShrunkBert(
  format: string,
  writer: ExportWriter,
  target: Extract<ExportTarget, { kind: 'bert' }>,
  directory: string,
): Promise<ShrinkRecord> {
  if (format !== 'huggingface')
    throw new FinepruneError({
      code: ErrorCodes.INVALID_RECIPE,
      message: `export.shrink: a shrunk BERT model is written in the Hugging Face layout, not as ${format}.`,
      fix: 'Use export.format: huggingface (or auto) with export.shrink, or drop export.shrink for the sparse file.',
      details: { path: 'export.shrink' },
    });
  const { model, record } = await shrinkBertForExport(target.model);
  try {
    await writer({ ...target, model }, directory);
  } finally {
    model.dispose();
  }
  return record;
}
