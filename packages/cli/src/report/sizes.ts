/**
 * The size line of `fineprune report`: what the model takes as a stripped TF.js float32 model, that
 * gzipped, and as compact sparse exports in each value encoding (encoded in memory, not written).
 */

import { gzipSync } from 'node:zlib';
import {
  artifactsReferenceBytes,
  encodeCompactArtifacts,
  VALUE_ENCODINGS,
  type ValueEncoding,
} from '@fineprune/sparse';
import * as tf from '@tensorflow/tfjs-core';

/**
 * Sizes of a model's exports, in bytes.
 *
 * @example
 * ```ts
 * const sizes: ExportSizes = { tfjs: 1_066_440, tfjsGzip: 141_583, compact: { float32: 134_000, float16: 81_000, int8: 56_000 } };
 * ```
 */
export interface ExportSizes {
  /** The stripped model as TF.js float32: model.json topology plus weights. */
  tfjs: number;
  /** The same, gzipped (level 9). */
  tfjsGzip: number;
  /** The compact sparse export (`fineprune export --format sparse --values …`) per value encoding. */
  compact: Record<ValueEncoding, number>;
}

/**
 * The export sizes of stripped weights (pruned entries are zeros) and a topology.
 *
 * @param topology - the model.json topology
 * @param weights - every weight by name, in the model's order (float32)
 * @returns the sizes
 *
 * @example
 * ```ts
 * const sizes = await exportSizes(artifacts.modelTopology, weights);
 * ```
 */
export async function exportSizes(
  topology: unknown,
  weights: ReadonlyArray<{ name: string; tensor: tf.Tensor }>,
): Promise<ExportSizes> {
  const float32 = weights.filter(({ tensor }) => tensor.dtype === 'float32');
  const { data, specs } = await tf.io.encodeWeights(float32.map(({ name, tensor }) => ({ name, tensor })));
  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: topology as tf.io.ModelArtifacts['modelTopology'],
    weightSpecs: specs,
    weightData: data,
  };
  const topologyText = new TextEncoder().encode(JSON.stringify(topology ?? {}));
  const gzipped = gzipSync(Buffer.concat([topologyText, new Uint8Array(data as ArrayBuffer)]), {
    level: 9,
  }).length;
  const compact = {} as Record<ValueEncoding, number>;
  for (const values of VALUE_ENCODINGS)
    compact[values] = (await encodeCompactArtifacts(artifacts, { values, allowLarger: true })).length;
  return { tfjs: artifactsReferenceBytes(artifacts), tfjsGzip: gzipped, compact };
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(bytes < 1e6 ? 3 : 2)} MB`;
}

/**
 * One line for a terminal report.
 *
 * @example
 * ```ts
 * sizeLine(sizes); // 'size: 1.07 MB as TF.js float32 (gzip 0.142 MB, 7.5×); compact sparse: float32 0.134 MB (8.0×), …'
 * ```
 */
export function sizeLine(sizes: ExportSizes): string {
  const ratio = (bytes: number) => `${(sizes.tfjs / bytes).toFixed(1)}×`;
  const compact = VALUE_ENCODINGS.map(
    (values) => `${values} ${megabytes(sizes.compact[values])} (${ratio(sizes.compact[values])})`,
  );
  return `size: ${megabytes(sizes.tfjs)} as TF.js float32 (gzip ${megabytes(sizes.tfjsGzip)}, ${ratio(sizes.tfjsGzip)}); compact sparse export: ${compact.join(', ')}`;
}
