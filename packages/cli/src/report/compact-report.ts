/**
 * `fineprune report` on a compact sparse export (`model.fpsparse`): per tensor its layout, value
 * encoding, stored entries and bytes, and the file's size against the same tensors as float32.
 */

import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { readCompactFile } from '@fineprune/sparse';
import { COMPACT_FILE } from '../export-formats';
import { textTable } from './text';

/**
 * What {@link readCompactReport} finds in a compact export.
 *
 * @example
 * ```ts
 * const { bytes, float32Bytes, tensors } = await readCompactReport('out/run/sparse/model.fpsparse');
 * ```
 */
export interface CompactReport {
  kind: 'compact';
  file: string;
  /** The model it holds: `layers-model`, `huggingface` or `tensors`. */
  model: string;
  /** Bytes of the file. */
  bytes: number;
  /** The same tensors as float32. */
  float32Bytes: number;
  tensors: Array<{
    name: string;
    shape: number[];
    layout: string;
    values: string;
    /** Entries stored: the kept ones for bitmap and delta, all for dense and vector. */
    stored: number;
    bytes: number;
  }>;
}

/**
 * The compact export a report target names: a `.fpsparse` file, or a directory holding
 * `model.fpsparse` and no model.json.
 *
 * @example
 * ```ts
 * compactExportPath('out/run/sparse'); // 'out/run/sparse/model.fpsparse'
 * ```
 */
export function compactExportPath(target: string): string | undefined {
  if (target.endsWith('.fpsparse')) return target;
  const inside = path.join(target, COMPACT_FILE);
  if (!existsSync(path.join(target, 'model.json')) && existsSync(inside) && statSync(target).isDirectory())
    return inside;
  return undefined;
}

/**
 * Reads a compact export (checked as untrusted, every tensor decoded) and lists what it stores.
 *
 * @throws FinepruneError `IO_FAILED` / `CHECKPOINT_CORRUPT` / `CHECKPOINT_MISMATCH` (see `readCompactFile`)
 *
 * @example
 * ```ts
 * console.log(compactReportText(await readCompactReport('model.fpsparse')));
 * ```
 */
export async function readCompactReport(file: string): Promise<CompactReport> {
  const compact = await readCompactFile(file);
  const tensors = compact.tensors.map((tensor) => {
    tensor.check(); // decodes and checks indices and values, without densifying
    return {
      name: tensor.name,
      shape: [...tensor.shape],
      layout: tensor.entry.layout,
      values: tensor.entry.values,
      stored: tensor.storedEntries,
      bytes: tensor.byteLength,
    };
  });
  return {
    kind: 'compact',
    file,
    model: compact.header.model.kind,
    bytes: compact.byteLength,
    float32Bytes: tensors.reduce((sum, tensor) => sum + 4 * tensor.shape.reduce((a, b) => a * b, 1), 0),
    tensors,
  };
}

/**
 * The report as text: a table and a size line.
 *
 * @example
 * ```ts
 * io.stdout.write(`${compactReportText(report)}\n`);
 * ```
 */
export function compactReportText(report: CompactReport): string {
  const rows = report.tensors.map((tensor) => [
    tensor.name,
    `[${tensor.shape.join(', ')}]`,
    tensor.layout,
    tensor.values,
    String(tensor.stored),
    String(tensor.bytes),
  ]);
  return [
    textTable(['tensor', 'shape', 'layout', 'values', 'stored', 'bytes'], rows, 4),
    '',
    `size: ${report.bytes} bytes (${report.model} compact sparse export), ${(report.float32Bytes / report.bytes).toFixed(1)}× smaller than its tensors as float32 (${report.float32Bytes} bytes)`,
  ].join('\n');
}
