/** Test helpers for the compact export: seeded tensors, pruning by magnitude, and re-sealed edits. */
import { createRandom } from '@fineprune/tensor';
import { FinepruneError } from '@fineprune/tensor/errors';
import { expect } from 'vitest';
import { assembleCompactModel } from '../src/format/container';
import type { CompactHeader } from '../src/format/header';

/** Seeded normal-ish values (sum of uniforms), float32. */
export function seededValues(count: number, seed: number, scale = 0.1): Float32Array {
  const random = createRandom(seed);
  return Float32Array.from(
    { length: count },
    () => (random.next() + random.next() + random.next() - 1.5) * scale,
  );
}

/** Keeps the `kept` fraction of largest magnitudes (ties by index), zeroing the rest; returns the 0/1 mask. */
export function pruneByMagnitude(values: Float32Array, kept: number): Float32Array {
  const order = Array.from(values.keys()).sort(
    (a, b) => Math.abs(values[b]!) - Math.abs(values[a]!) || a - b,
  );
  const mask = new Float32Array(values.length);
  for (const index of order.slice(0, Math.round(kept * values.length))) mask[index] = 1;
  for (let index = 0; index < values.length; index += 1) if (mask[index] === 0) values[index] = 0;
  return mask;
}

/** The header and data of compact bytes, without checking anything (to edit them). */
export function unsealed(bytes: Uint8Array): { header: CompactHeader; data: Uint8Array } {
  const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + length))) as CompactHeader;
  delete header.integrity;
  return { header, data: bytes.slice(12 + length) };
}

/**
 * Compact bytes with the header or data edited in place, sealed with fresh content hashes (as anyone
 * who can edit the file can do).
 */
export async function resealed(
  bytes: Uint8Array,
  edit: (header: CompactHeader, data: Uint8Array) => void,
): Promise<Uint8Array> {
  const { header, data } = unsealed(bytes);
  edit(header, data);
  return assembleCompactModel(header, data);
}

/** The FinepruneError code of a rejected promise (a description when it is not one). */
export async function rejectionCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return FinepruneError.is(error) ? error.code : `not a FinepruneError: ${String(error)}`;
  }
  return 'resolved';
}

/** The FinepruneError of a rejected promise (fails the test otherwise). */
export async function rejection(promise: Promise<unknown>): Promise<FinepruneError> {
  try {
    await promise;
  } catch (error) {
    expect(FinepruneError.is(error), String(error)).toBe(true);
    return error as FinepruneError;
  }
  throw new Error('expected a rejection');
}
