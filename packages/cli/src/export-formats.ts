/**
 * The forms `fineprune export` writes: the TF.js layers format (float32, or TF.js's own uint8 /
 * uint16 / float16 quantization, which stock `tf.loadLayersModel` reads) and the compact sparse
 * export of `@fineprune/sparse` (float32, float16 or int8 values). None is written larger than the
 * model it came from unless the user allows it.
 */

import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCodes, FinepruneError } from '@fineprune/core';
import {
  artifactsReferenceBytes,
  isCompactModel,
  largerThanSource,
  quantizeArtifacts,
  type TfjsQuantization,
  type ValueEncoding,
} from '@fineprune/sparse';
import type * as tf from '@tensorflow/tfjs-core';
import { writeFileAtomic } from './files';
import type { ModelSource } from './model-source';

/**
 * The export formats: `tfjs` (model.json + weights) or `sparse` (one `model.fpsparse`).
 *
 * @example
 * ```ts
 * const format: ExportFormat = 'sparse';
 * ```
 */
export type ExportFormat = 'tfjs' | 'sparse';

/**
 * How exported values are stored.
 *
 * @example
 * ```ts
 * const values: ExportValues = 'int8';
 * ```
 */
export type ExportValues = ValueEncoding | TfjsQuantization;

/** The values each format can store. */
export const EXPORT_VALUES: Record<ExportFormat, readonly ExportValues[]> = {
  tfjs: ['float32', 'float16', 'uint8', 'uint16'],
  sparse: ['float32', 'float16', 'int8'],
};

/** The file name of a compact export inside `--out`. */
export const COMPACT_FILE = 'model.fpsparse';

/**
 * The values an export uses: the user's choice, or by default float32 — for `tfjs`, the quantization
 * of the model the run started from (a uint8 model exports as uint8).
 *
 * @returns the values, or a sentence saying why the choice does not fit the format
 */
export function exportValues(
  format: ExportFormat,
  values: ExportValues | undefined,
  source: ModelSource | undefined,
): ExportValues | string {
  const chosen = values ?? (format === 'tfjs' ? (source?.quantization ?? 'float32') : 'float32');
  if (!EXPORT_VALUES[format].includes(chosen))
    return `--values ${chosen} does not fit --format ${format}, which stores ${EXPORT_VALUES[format].join(', ')}.`;
  return chosen;
}

/**
 * Options of {@link sizeCheckedHandler}.
 *
 * @example
 * ```ts
 * const options: SizeCheckOptions = { values: 'uint8', referenceBytes: 2_600_000, allowLarger: false };
 * ```
 */
export interface SizeCheckOptions {
  values: ExportValues;
  referenceBytes: number;
  allowLarger: boolean;
}

/**
 * A handler that stores the weights in TF.js's quantized form (for uint8 / uint16 / float16 values),
 * checks the size against the model the export came from, and only then saves through `inner`.
 *
 * @throws FinepruneError (when saving) `LARGER_THAN_SOURCE` before anything is written
 */
export function sizeCheckedHandler(inner: tf.io.IOHandler, options: SizeCheckOptions): tf.io.IOHandler {
  return {
    save: async (artifacts) => {
      const stored =
        options.values === 'float32'
          ? artifacts
          : quantizeArtifacts(artifacts, options.values as TfjsQuantization);
      const bytes = artifactsReferenceBytes(stored);
      if (bytes > options.referenceBytes && !options.allowLarger)
        throw largerThanSource(bytes, options.referenceBytes, options.values);
      return inner.save!(stored);
    },
  };
}

/** Whether `file` holds a compact export (true), nothing (false), or something else (throws). */
async function holdsCompactExport(file: string): Promise<boolean> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  try {
    const stats = await handle.stat();
    const head = new Uint8Array(8);
    if (stats.isFile()) await handle.read(head, 0, 8, 0);
    if (stats.isFile() && isCompactModel(head)) return true;
  } finally {
    await handle.close();
  }
  throw new FinepruneError({
    code: ErrorCodes.IO_FAILED,
    message: `${file} exists and is not a compact export; fineprune will not replace it.`,
    fix: 'Choose another --out directory, or move that file away first if you no longer need it.',
    details: { file },
  });
}

/**
 * Writes a compact export as `<directory>/model.fpsparse`, atomically (a temporary file renamed over
 * it): it replaces an earlier compact export, never another file.
 *
 * @returns the path written
 * @throws FinepruneError `IO_FAILED` when the file exists and is something else, or cannot be written
 */
export async function writeCompactExport(directory: string, bytes: Uint8Array): Promise<string> {
  const file = path.join(directory, COMPACT_FILE);
  await holdsCompactExport(file).catch((error: unknown) => {
    if (FinepruneError.is(error)) throw error;
    throw new FinepruneError({
      code: ErrorCodes.IO_FAILED,
      message: `${file} cannot be checked: ${(error as Error).message}`,
      fix: 'Check the --out directory and its permissions.',
      cause: error,
    });
  });
  await writeFileAtomic(file, bytes);
  return file;
}
