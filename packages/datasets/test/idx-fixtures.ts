/** Builders of small IDX files for tests (not exported from the package). */

import { gzipSync } from 'node:zlib';

/** Element writers per IDX type code: [bytes per element, writer]. */
const WRITERS: Record<number, [number, (view: DataView, offset: number, value: number) => void]> = {
  8: [1, (v, o, x) => v.setUint8(o, x)],
  9: [1, (v, o, x) => v.setInt8(o, x)],
  11: [2, (v, o, x) => v.setInt16(o, x, false)],
  12: [4, (v, o, x) => v.setInt32(o, x, false)],
  13: [4, (v, o, x) => v.setFloat32(o, x, false)],
  14: [8, (v, o, x) => v.setFloat64(o, x, false)],
};

/** A big-endian IDX file of the given type code, dims and values. */
export function buildIdx(typeCode: number, dims: number[], values: ArrayLike<number>): Uint8Array {
  const [size, write] = WRITERS[typeCode]!;
  const header = 4 + 4 * dims.length;
  const bytes = new Uint8Array(header + size * values.length);
  const view = new DataView(bytes.buffer);
  bytes[2] = typeCode;
  bytes[3] = dims.length;
  dims.forEach((d, axis) => {
    view.setUint32(4 + 4 * axis, d, false);
  });
  for (let i = 0; i < values.length; i++) write(view, header + size * i, values[i]!);
  return bytes;
}

/** Uint8 images `[count, rows, cols]` whose pixel `p` of image `i` is `(i * 7 + p) % 256`. */
export function buildImages(count: number, rows = 2, cols = 3): Uint8Array {
  const values = new Uint8Array(count * rows * cols);
  for (let i = 0; i < values.length; i++)
    values[i] = (Math.floor(i / (rows * cols)) * 7 + (i % (rows * cols))) % 256;
  return buildIdx(0x08, [count, rows, cols], values);
}

/** Uint8 labels file. */
export function buildLabels(labels: number[]): Uint8Array {
  return buildIdx(0x08, [labels.length], labels);
}

/**
 * A gzip file of several members: `head` then `megabytes` members of 1 MiB of zeros each (a member
 * of 1 MiB of zeros compresses to about 1 KiB), so 3,000 megabytes take about 3 MB on disk.
 */
export function gzipBomb(head: Uint8Array, megabytes: number): Uint8Array {
  const zeros = gzipSync(new Uint8Array(1024 * 1024), { level: 9 });
  const first = gzipSync(head);
  const bomb = new Uint8Array(first.length + megabytes * zeros.length);
  bomb.set(first, 0);
  for (let index = 0; index < megabytes; index += 1) bomb.set(zeros, first.length + index * zeros.length);
  return bomb;
}

export { gzipSync };
