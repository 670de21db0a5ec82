import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { ErrorCodes, FinepruneError } from '@fineprune/core';
import { fileSystem, type LayersPrunableModel, strip } from '@fineprune/layers';
import {
  artifactsReferenceBytes,
  compactBytesOfModel,
  readCompactModel,
  type ValueEncoding,
} from '@fineprune/sparse';
import { setBackend } from '@fineprune/tensor';
import { checkJsonBounds, readRegularFile } from '@fineprune/tensor/untrusted';
import * as tf from '@tensorflow/tfjs-core';
import { loadRunCheckpoint } from './checkpoint';
import {
  EXPORT_VALUES,
  type ExportFormat,
  type ExportValues,
  exportValues,
  sizeCheckedHandler,
  writeCompactExport,
} from './export-formats';
import { probeWritableDirectory } from './files';
import { type ModelSource, parseModelSource } from './model-source';
import { layerRow, readSavedModel, type SavedModelSummary } from './report/read-model';

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
}

/** The path with its links resolved as far as it exists (a missing tail is kept as written). */
function resolvedPath(target: string): string {
  const absolute = path.resolve(target);
  let existing = absolute;
  while (!existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing);
  try {
    return path.join(realpathSync(existing), path.relative(existing, absolute));
  } catch {
    return absolute;
  }
}

function refuse(message: string, fix: string, details: Record<string, unknown>): FinepruneError {
  return new FinepruneError({ code: ErrorCodes.IO_FAILED, message, fix, details });
}

/**
 * Refuses an export target that would replace or shadow the run's own files: the checkpoint being
 * exported, or a run output directory itself (where `report` and `export` look for the checkpoint).
 * The handler refuses any other checkpoint or unreadable model.json on its own.
 */
function checkTarget(checkpointDirectory: string, out: string): void {
  const target = resolvedPath(out);
  if (target === resolvedPath(checkpointDirectory)) {
    throw refuse(
      `--out ${out} is the checkpoint being exported; the export would replace it and the run could no longer resume.`,
      'Write the export to another directory, for example <run>/model.',
      { directory: out, checkpoint: checkpointDirectory },
    );
  }
  if (
    existsSync(path.join(target, 'run.json')) ||
    existsSync(path.join(target, 'checkpoint', 'model.json'))
  ) {
    throw refuse(
      `--out ${out} is a run output directory; an export there would shadow its checkpoint for report and export.`,
      'Write the export to a folder of its own, for example <run>/model.',
      { directory: out },
    );
  }
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
 *
 * @param checkpointDirectory - the checkpoint directory
 * @param out - the directory to write into
 * @param options - `format`, `values`, `allowLarger`, `allowUnverified` (version-1 checkpoints)
 * @returns the summary of the written model, its files and sizes
 * @throws FinepruneError `IO_FAILED` for a refused or unwritable target, `LARGER_THAN_SOURCE`,
 *   `INVALID_ARGUMENT` for values the format cannot store, `CHECKPOINT_CORRUPT` /
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
  const values = exportValues(format, options.values, source);
  const directory = path.resolve(out);
  try {
    if (!EXPORT_VALUES[format].includes(values as ExportValues))
      throw new FinepruneError({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: values,
        fix: `Pick --values from ${EXPORT_VALUES[format].join(', ')}.`,
      });
    const written = await writeExport(model, directory, {
      format,
      values: values as ExportValues,
      source,
      allowLarger: options.allowLarger === true,
    });
    return { ...written, format, values: values as ExportValues };
  } finally {
    model.dispose();
  }
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
  },
): Promise<Omit<ExportSummary, 'format' | 'values'>> {
  const plain = await strip(model);
  try {
    if (options.format === 'sparse') {
      const bytes = await compactBytesOfModel(plain, {
        values: options.values as ValueEncoding,
        allowLarger: options.allowLarger,
        ...(options.source ? { referenceBytes: options.source.bytes } : {}),
      });
      await probeWritableDirectory(directory, 'the export directory (--out)');
      await refuseCheckpointFolder(directory);
      const file = await writeCompactExport(directory, bytes);
      const summary = await compactSummary(bytes, file);
      return {
        ...summary,
        files: [file],
        bytes: bytes.length,
        referenceBytes: options.source?.bytes ?? summary.referenceBytes,
      };
    }
    let referenceBytes = options.source?.bytes ?? 0;
    await plain.save(
      tf.io.withSaveHandler(async (artifacts) => {
        referenceBytes ||= artifactsReferenceBytes(artifacts);
        return sizeCheckedHandler(fileSystem(directory), {
          values: options.values,
          referenceBytes,
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
      referenceBytes,
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

/**
 * Refuses to put a compact export beside a checkpoint (report and export would pick the checkpoint)
 * or beside a model.json it cannot read (a FIFO, a huge or malformed file).
 */
async function refuseCheckpointFolder(directory: string): Promise<void> {
  const modelJson = path.join(directory, 'model.json');
  if (!existsSync(modelJson)) return;
  let metadata: unknown;
  try {
    const bytes = await readRegularFile(modelJson, { maxBytes: 64 * 1024 ** 2, what: 'the model file' });
    const text = new TextDecoder().decode(bytes);
    if (checkJsonBounds(text, { maxDepth: 64, maxValues: 2_000_000 })) throw new Error('too deeply nested');
    metadata = (JSON.parse(text) as { userDefinedMetadata?: { fineprune?: unknown } }).userDefinedMetadata
      ?.fineprune;
  } catch (error) {
    throw refuse(
      `--out ${directory} holds a model.json that is not a readable TF.js model (${(error as Error).message.slice(0, 200)}); fineprune will not write beside it.`,
      'Write the export to a folder of its own, for example <run>/sparse.',
      { directory },
    );
  }
  if (metadata !== undefined)
    throw refuse(
      `--out ${directory} holds a checkpoint; a compact export there would sit beside it.`,
      'Write the export to a folder of its own, for example <run>/sparse.',
      { directory },
    );
}

/** The per-tensor table of a compact export (kept = stored entries that are not zero). */
export async function compactSummary(
  bytes: Uint8Array,
  file: string,
): Promise<SavedModelSummary & { referenceBytes: number }> {
  const compact = await readCompactModel(bytes, { source: file });
  const layers = compact.tensors
    .filter((tensor) => tensor.isMatrix)
    .map((tensor) => {
      let kept = 0;
      for (const value of tensor.dense()) if (value !== 0) kept += 1;
      return layerRow(tensor.name, tensor.shape, kept);
    });
  const referenceBytes = compact.tensors.reduce(
    (sum, tensor) => sum + 4 * tensor.shape.reduce((a, b) => a * b, 1),
    0,
  );
  return { kind: 'model', layers, samples: [], referenceBytes };
}
