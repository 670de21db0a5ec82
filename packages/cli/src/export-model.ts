import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ErrorCodes, FinepruneError } from '@fineprune/core';
import { fileSystem, type LayersPrunableModel, strip } from '@fineprune/layers';
import { artifactsReferenceBytes, compactBytesOfModel, type ValueEncoding } from '@fineprune/sparse';
import { setBackend } from '@fineprune/tensor';
import { huggingFaceNames } from '@fineprune/transformers';
import * as tf from '@tensorflow/tfjs-core';
import { loadRunCheckpoint } from './checkpoint';
import { compactBertBytes, isBertModelDirectory, openBertForExport } from './export-bert';
import { checkTarget, refuse, refuseCheckpointFolder } from './export-checks';
import {
  EXPORT_VALUES,
  type ExportFormat,
  type ExportValues,
  exportValues,
  sizeCheckedHandler,
  writeCompactExport,
} from './export-formats';
import { shrinkForExport } from './export-shrink';
import { probeWritableDirectory } from './files';
import { type ModelSource, parseModelSource } from './model-source';
import { compactSummary } from './report/compact-report';
import { readSavedModel, type SavedModelSummary } from './report/read-model';
import type { ShrinkRecord } from './run-record';

/**
 * Options of {@link exportCheckpoint}.
 *
 * @example
 * ```ts
 * const options: ExportCheckpointOptions = { format: 'sparse', values: 'int8' };
 * ```
 */
export interface ExportCheckpointOptions {
  /** Export a version-1 checkpoint, written before checkpoints carried content hashes. Default false. */
  allowUnverified?: boolean;
  /** `tfjs` (model.json + weights, the default) or `sparse` (one compact `model.fpsparse`). */
  format?: ExportFormat;
  /**
   * How values are stored. Default float32 — for `tfjs`, the quantization of the model file the run
   * started from (uint8, uint16 or float16) when it had one.
   */
  values?: ExportValues;
  /** Write the export even when it is larger than the model the run started from. Default false. */
  allowLarger?: boolean;
  /**
   * Remove the pruned neurons and filters physically (`shrink` of @fineprune/layers) and write the
   * smaller dense model, in either format. Layers models only. Default false.
   */
  shrink?: boolean;
}

/**
 * What {@link exportCheckpoint} wrote.
 *
 * @example
 * ```ts
 * const { files, bytes, referenceBytes } = await exportCheckpoint('out/run/checkpoint', 'out/run/sparse', { format: 'sparse' });
 * ```
 */
export interface ExportSummary extends SavedModelSummary {
  format: ExportFormat;
  values: ExportValues;
  /** The files written. */
  files: string[];
  /** Their bytes in all. */
  bytes: number;
  /** The size of the model the export came from (the model file the run started from, when known). */
  referenceBytes: number;
  /** With `shrink`: the units each structure kept, the structures left whole, the sizes before and after. */
  shrink?: ShrinkRecord;
}

/**
 * Exports a checkpoint's model stripped (masks applied, scores and masks dropped) into `out`, and
 * summarises what was written: as a TF.js layers model (`format: 'tfjs'`, model.json + weights,
 * float32 or TF.js's uint8 / uint16 / float16 quantization, loaded by stock `tf.loadLayersModel`) or
 * as one compact sparse export (`format: 'sparse'`, `model.fpsparse`, float32 / float16 / int8 values,
 * loaded by `@fineprune/sparse`). The export is refused (`LARGER_THAN_SOURCE`, nothing written) when
 * it would be larger than the model the run started from (its file, when the run loaded one;
 * otherwise the float32 model), unless `allowLarger`. The checkpoint is checked as untrusted on load
 * (content hashes, finite weights, masks exactly 0/1 or in [0, 1]); `out` may not be the checkpoint,
 * a run output directory, another checkpoint or a file that is not an export of the same kind.
 * A BERT run checkpoint (checkpoint.json) or a Hugging Face BERT folder (config.json +
 * model.safetensors) exports only as `format: 'sparse'`: its Hugging Face layout with only the
 * weights its masks keep, never larger than the folder's model.safetensors (or the checkpoint's
 * tensors as float32) unless `allowLarger`. With `shrink`, a layers model is written physically
 * smaller (pruned neurons and filters removed, the following layers' inputs cut to match) and the
 * summary says per structure how many units it kept.
 *
 * @param checkpointDirectory - the checkpoint directory (or a Hugging Face BERT folder)
 * @param out - the directory to write into
 * @param options - `format`, `values`, `allowLarger`, `allowUnverified` (version-1 checkpoints)
 * @returns the summary of the written model, its files and sizes
 * @throws FinepruneError `IO_FAILED` for a refused or unwritable target, `LARGER_THAN_SOURCE`,
 *   `INVALID_ARGUMENT` for values the format cannot store (or `format: 'tfjs'` of a BERT model), `CHECKPOINT_CORRUPT` /
 *   `CHECKPOINT_MISMATCH` for a damaged, edited or unsuitable checkpoint
 *
 * @example
 * ```ts
 * const summary = await exportCheckpoint('out/run/checkpoint', 'out/run/sparse', { format: 'sparse', values: 'int8' });
 * console.log(`${summary.bytes} bytes, ${(summary.referenceBytes / summary.bytes).toFixed(1)}× smaller`);
 * ```
 */
export async function exportCheckpoint(
  checkpointDirectory: string,
  out: string,
  options: ExportCheckpointOptions = {},
): Promise<ExportSummary> {
  if (!existsSync(path.join(checkpointDirectory, 'model.json'))) {
    if (isBertModelDirectory(checkpointDirectory)) return exportBert(checkpointDirectory, out, options);
    throw refuse(
      `${checkpointDirectory} holds no model.json.`,
      'Pass a checkpoint directory or a run output directory written by `fineprune run`.',
      { directory: checkpointDirectory },
    );
  }
  checkTarget(checkpointDirectory, out);
  await setBackend('cpu');
  const { model, state, metadata } = await loadRunCheckpoint(checkpointDirectory, {
    loss: 'meanSquaredError',
    ...(options.allowUnverified ? { allowUnverified: true } : {}),
  });
  tf.dispose(Object.values(state.tensors));
  const format = options.format ?? 'tfjs';
  const source = parseModelSource(metadata?.source);
  const directory = path.resolve(out);
  try {
    const values = checkedValues(format, options.values, source);
    const written = await writeExport(model, directory, {
      format,
      values,
      source,
      allowLarger: options.allowLarger === true,
      shrink: options.shrink === true,
    });
    return { ...written, format, values };
  } finally {
    model.dispose();
  }
}

/** The values an export stores (see `exportValues`). @throws FinepruneError `INVALID_ARGUMENT` when the format cannot store them */
function checkedValues(
  format: ExportFormat,
  values: ExportValues | undefined,
  source: ModelSource | undefined,
): ExportValues {
  const chosen = exportValues(format, values, source);
  if (!EXPORT_VALUES[format].includes(chosen as ExportValues))
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: chosen,
      fix: `Pick --values from ${EXPORT_VALUES[format].join(', ')}.`,
    });
  return chosen as ExportValues;
}

/**
 * Exports the BERT model of a run checkpoint or a Hugging Face folder as one compact sparse file
 * (the only format `export` writes for it), never larger than the folder's model.safetensors (or,
 * for a checkpoint, its tensors as float32) unless `allowLarger`.
 */
async function exportBert(
  directory: string,
  out: string,
  options: ExportCheckpointOptions,
): Promise<ExportSummary> {
  checkTarget(directory, out);
  const format = options.format ?? 'tfjs';
  if (options.shrink)
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `${directory} holds a BERT model; --shrink writes TF.js layers models, and export writes BERT only as the sparse file.`,
      fix: 'Shrink a BERT model in its recipe (export.shrink with export.format: huggingface), or drop --shrink.',
    });
  if (format !== 'sparse')
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `${directory} holds a BERT model; --format ${format} writes TF.js layers models.`,
      fix: 'Pass --format sparse for the compact export (a recipe with export.format: huggingface writes the Hugging Face layout).',
    });
  const values = checkedValues(format, options.values, undefined) as ValueEncoding;
  await setBackend('cpu');
  const { model, referenceBytes } = await openBertForExport(directory);
  try {
    const bytes = await compactBertBytes(model, {
      values,
      allowLarger: options.allowLarger === true,
      ...(referenceBytes === undefined ? {} : { referenceBytes }),
    });
    // The summary counts the pruned projections, not the embeddings and the head.
    const projections = new Set(
      huggingFaceNames(model.config, model.task)
        .filter((entry) => entry.prunableGroup !== undefined)
        .map((entry) => entry.huggingFaceName),
    );
    const written = await writeCompactFile(bytes, path.resolve(out), referenceBytes, (name) =>
      projections.has(name),
    );
    return { ...written, format, values };
  } finally {
    model.dispose();
  }
}

/** Writes a compact export into `directory` (checked first) and summarises it. */
async function writeCompactFile(
  bytes: Uint8Array,
  directory: string,
  referenceBytes: number | undefined,
  prunable?: (name: string) => boolean,
): Promise<Omit<ExportSummary, 'format' | 'values'>> {
  await probeWritableDirectory(directory, 'the export directory (--out)');
  await refuseCheckpointFolder(directory);
  const file = await writeCompactExport(directory, bytes);
  const summary = await compactSummary(bytes, file, prunable);
  return {
    ...summary,
    files: [file],
    bytes: bytes.length,
    referenceBytes: referenceBytes ?? summary.referenceBytes,
  };
}

/** Strips the model and writes it in the chosen format; summarises what was written. */
async function writeExport(
  model: LayersPrunableModel,
  directory: string,
  options: {
    format: ExportFormat;
    values: ExportValues;
    source: ModelSource | undefined;
    allowLarger: boolean;
    shrink: boolean;
  },
): Promise<Omit<ExportSummary, 'format' | 'values'>> {
  const shrunk = options.shrink
    ? await shrinkForExport(model, {
        code: ErrorCodes.INVALID_ARGUMENT,
        option: '--shrink',
        fix: 'Drop --shrink: the stripped export keeps every unit.',
      })
    : undefined;
  const plain = shrunk?.model ?? (await strip(model));
  const record = shrunk ? { shrink: shrunk.record } : {};
  // A shrunk export is measured against the model before shrinking (its file, or its float32
  // weights and model.json topology, as artifactsReferenceBytes counts a model).
  const referenceBytes =
    options.source?.bytes ??
    (shrunk ? shrunk.record.bytesBefore + JSON.stringify(model.model.toJSON(null, false)).length : undefined);
  try {
    if (options.format === 'sparse') {
      const bytes = await compactBytesOfModel(plain, {
        values: options.values as ValueEncoding,
        allowLarger: options.allowLarger,
        ...(referenceBytes === undefined ? {} : { referenceBytes }),
      });
      return { ...(await writeCompactFile(bytes, directory, referenceBytes)), ...record };
    }
    let tfjsReferenceBytes = referenceBytes ?? 0;
    await plain.save(
      tf.io.withSaveHandler(async (artifacts) => {
        tfjsReferenceBytes ||= artifactsReferenceBytes(artifacts);
        return sizeCheckedHandler(fileSystem(directory), {
          values: options.values,
          referenceBytes: tfjsReferenceBytes,
          allowLarger: options.allowLarger,
        }).save!(artifacts);
      }),
    );
    const summary = await readSavedModel(directory);
    const files = await writtenModelFiles(directory);
    return {
      ...summary,
      files,
      bytes: files.reduce((sum, file) => sum + statSync(file).size, 0),
      referenceBytes: tfjsReferenceBytes,
      ...record,
    };
  } finally {
    plain.dispose();
  }
}

/** model.json and the weights files it names (the files a tfjs export consists of). */
async function writtenModelFiles(directory: string): Promise<string[]> {
  const json = JSON.parse(readFileSync(path.join(directory, 'model.json'), 'utf8')) as {
    weightsManifest: Array<{ paths: string[] }>;
  };
  return [
    path.join(directory, 'model.json'),
    ...json.weightsManifest.flatMap((group) => group.paths.map((file) => path.join(directory, file))),
  ];
}
