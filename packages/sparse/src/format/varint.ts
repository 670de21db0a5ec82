/**
 * Unsigned LEB128 varints: 7 bits per byte, low bits first, the high bit set on every byte but the
 * last. Values below 128 take one byte, below 16,384 two. The compact export codes index gaps with
 * them (at 3% kept the mean gap is about 32, so nearly every gap is one byte).
 */

/** Bytes {@link writeVarint} uses for `value` (a non-negative integer below 2^31). */
export function varintLength(value: number): number {
  let length = 1;
  for (let rest = value >>> 7; rest > 0; rest >>>= 7) length += 1;
  return length;
}

/** Writes `value` at `offset`; returns the offset after it. */
export function writeVarint(target: Uint8Array, offset: number, value: number): number {
  let at = offset;
  let rest = value >>> 0;
  while (rest >= 0x80) {
    target[at] = (rest & 0x7f) | 0x80;
    at += 1;
    rest >>>= 7;
  }
  target[at] = rest;
  return at + 1;
}

/**
 * A reader of varints from untrusted bytes: every read is bounded by the end of the region, and a
 * value needing more than five bytes or reaching 2^31 is refused (the caller names the file).
 */
export class VarintReader {
  private at: number;

  constructor(
    private readonly bytes: Uint8Array,
    start: number,
    private readonly end: number,
  ) {
    this.at = start;
  }

  /** The offset of the next byte. */
  get offset(): number {
    return this.at;
  }

  /** The next value, or `undefined` when the region ends inside it or it is out of range. */
  next(): number | undefined {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (this.at >= this.end) return undefined;
      const byte = this.bytes[this.at]!;
      this.at += 1;
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value < 2 ** 31 ? value : undefined;
    }
    return undefined;
  }
}
