import { FinepruneError } from '@fineprune/tensor';
import { describe, expect, it } from 'vitest';
import { buildIdx, buildImages, buildLabels, gzipBomb, gzipSync } from '../test/idx-fixtures';
import { parseIdx, validateLabels } from './idx';

function expectFineprune(fn: () => unknown, code: string, pattern?: RegExp): FinepruneError {
  try {
    fn();
  } catch (error) {
    expect(FinepruneError.is(error)).toBe(true);
    const e = error as FinepruneError;
    expect(e.code).toBe(code);
    expect(e.fix.length).toBeGreaterThan(0);
    if (pattern) expect(e.message).toMatch(pattern);
    return e;
  }
  throw new Error('expected a FinepruneError');
}

describe('parseIdx', () => {
  it('parses a uint8 rank-3 file', () => {
    const bytes = buildImages(2, 2, 3);
    const parsed = parseIdx(bytes, { expectedMagic: 2051, expectedDims: [2, 2, 3] });
    expect(parsed.dataType).toBe('uint8');
    expect(parsed.dims).toEqual([2, 2, 3]);
    expect(parsed.data).toBeInstanceOf(Uint8Array);
    expect(Array.from(parsed.data)).toEqual([0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12]);
    // the data owns its buffer: changing the input does not change it
    bytes[16] = 99;
    expect(parsed.data[0]).toBe(0);
  });

  it('reads multi-byte types big-endian', () => {
    const ints = parseIdx(buildIdx(0x0c, [3], [1, -2, 0x01020304]));
    expect(ints.dataType).toBe('int32');
    expect(ints.data).toBeInstanceOf(Int32Array);
    expect(Array.from(ints.data)).toEqual([1, -2, 0x01020304]);
    // the raw bytes really are big-endian
    const raw = buildIdx(0x0c, [1], [0x01020304]);
    expect(Array.from(raw.subarray(8))).toEqual([1, 2, 3, 4]);

    const floats = parseIdx(buildIdx(0x0d, [2, 2], [0.5, -1.25, 3, 1e-3]));
    expect(floats.dataType).toBe('float32');
    expect(floats.dims).toEqual([2, 2]);
    expect(Array.from(floats.data)).toEqual([0.5, -1.25, 3, Math.fround(1e-3)]);

    expect(Array.from(parseIdx(buildIdx(0x0b, [2], [-300, 300])).data)).toEqual([-300, 300]);
    expect(Array.from(parseIdx(buildIdx(0x09, [2], [-5, 5])).data)).toEqual([-5, 5]);
    expect(Array.from(parseIdx(buildIdx(0x0e, [1], [Math.PI])).data)).toEqual([Math.PI]);
  });

  it('works on a view into a larger buffer (non-zero byteOffset)', () => {
    const inner = buildIdx(0x0c, [2], [7, -7]);
    const outer = new Uint8Array(inner.length + 3);
    outer.set(inner, 3);
    expect(Array.from(parseIdx(outer.subarray(3)).data)).toEqual([7, -7]);
  });

  it('gunzips transparently', () => {
    const parsed = parseIdx(gzipSync(buildLabels([3, 1, 4])), { expectedMagic: 2049 });
    expect(Array.from(parsed.data)).toEqual([3, 1, 4]);
  });

  it('rejects a corrupt gzip stream as INVALID_DATA', () => {
    const gz = gzipSync(buildLabels([3, 1, 4]));
    expectFineprune(
      () => parseIdx(gz.subarray(0, 12), { name: 'x.gz' }),
      'INVALID_DATA',
      /x\.gz.*decompress/,
    );
  });

  it('rejects a truncated file, naming it with expected and actual bytes', () => {
    const bytes = buildImages(4);
    const e = expectFineprune(
      () => parseIdx(bytes.subarray(0, bytes.length - 5), { name: 'train-images-idx3-ubyte' }),
      'INVALID_DATA',
      /train-images-idx3-ubyte is truncated/,
    );
    expect(e.details).toMatchObject({ expectedBytes: 16 + 24, actualBytes: 16 + 24 - 5 });
    expect(e.message).toContain('24 data bytes');
    expect(e.message).toContain('19 data bytes');
  });

  it('rejects an over-long file', () => {
    const bytes = buildLabels([1, 2]);
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    expectFineprune(() => parseIdx(longer, { name: 'labels' }), 'INVALID_DATA', /labels is over-long/);
  });

  it('rejects a header cut short, too-short input and non-IDX bytes', () => {
    expectFineprune(() => parseIdx(buildImages(1).subarray(0, 10)), 'INVALID_DATA', /inside its header/);
    expectFineprune(() => parseIdx(new Uint8Array([0, 0])), 'INVALID_DATA', /too short/);
    expectFineprune(
      () => parseIdx(new TextEncoder().encode('hello world!')),
      'INVALID_DATA',
      /two zero bytes/,
    );
  });

  it('rejects an unknown type code', () => {
    const bytes = buildLabels([1]);
    bytes[2] = 0x0a;
    expectFineprune(() => parseIdx(bytes), 'INVALID_DATA', /unknown IDX type code 0x0a/);
  });

  it('rejects an images file passed as labels (wrong magic)', () => {
    const e = expectFineprune(
      () => parseIdx(buildImages(2), { name: 'train-labels-idx1-ubyte', expectedMagic: 2049 }),
      'INVALID_DATA',
      /train-labels-idx1-ubyte has magic number 2051.*expected 2049/,
    );
    expect(e.details).toMatchObject({ magic: 2051, expectedMagic: 2049 });
  });

  it('checks expected dimensions, with -1 as a wildcard', () => {
    expect(parseIdx(buildImages(3), { expectedDims: [-1, 2, 3] }).dims).toEqual([3, 2, 3]);
    expectFineprune(
      () => parseIdx(buildImages(3), { expectedDims: [-1, 28, 28] }),
      'INVALID_DATA',
      /\[\*, 28, 28\]/,
    );
  });

  it('rejects absurd dimensions without allocating them', () => {
    const bytes = buildIdx(0x0e, [0xffffffff, 0xffffffff, 0xffffffff], []);
    expectFineprune(() => parseIdx(bytes), 'INVALID_DATA', /more than the 1073741824 this reader accepts/);
    // 16 + 2·3·4 bytes: within maxBytes 40, beyond 39.
    expect(parseIdx(buildImages(2, 3, 4), { maxBytes: 40 }).dims).toEqual([2, 3, 4]);
    expectFineprune(
      () => parseIdx(buildImages(2, 3, 4), { maxBytes: 39 }),
      'INVALID_DATA',
      /40 bytes, more than the 39/,
    );
  });

  it('inflates a gzip bomb only up to the size its header declares', () => {
    // A valid MNIST-shaped header, then 3,000 MiB of zeros in about 3 MB of gzip.
    const header = buildIdx(0x08, [60000, 28, 28], []);
    const bomb = gzipBomb(header, 3000);
    expect(bomb.length).toBeLessThan(4_000_000);
    const error = expectFineprune(
      () => parseIdx(bomb, { name: 'bomb.gz' }),
      'INVALID_DATA',
      /bomb\.gz is over-long/,
    );
    expect(error.details).toMatchObject({ expectedBytes: 16 + 60000 * 28 * 28 });
    // A header that declares 2^32·2^32 elements fails from the first bytes, before any inflating.
    const huge = gzipBomb(buildIdx(0x08, [0xffffffff, 0xffffffff], []), 3000);
    expectFineprune(() => parseIdx(huge, { name: 'huge.gz' }), 'INVALID_DATA', /declares dimensions/);
  });

  it('reads a gzip file whose header is preceded by a long gzip file name', () => {
    const labels = gzipSync(buildLabels([2, 7, 1, 8]));
    // Set FNAME (flag 0x08) and splice a 5,000-character name after the 10-byte gzip header.
    const name = new TextEncoder().encode(`${'n'.repeat(5000)}\0`);
    const named = new Uint8Array(labels.length + name.length);
    named.set(labels.subarray(0, 10), 0);
    named[3] = named[3]! | 0x08;
    named.set(name, 10);
    named.set(labels.subarray(10), 10 + name.length);
    expect(Array.from(parseIdx(named).data)).toEqual([2, 7, 1, 8]);
  });

  it('rejects a non-Uint8Array argument', () => {
    expectFineprune(() => parseIdx('nope' as unknown as Uint8Array), 'INVALID_ARGUMENT');
  });
});

describe('validateLabels', () => {
  it('accepts labels below the class count and rejects others', () => {
    validateLabels(new Uint8Array([0, 9, 3]), 10);
    const e = expectFineprune(
      () => validateLabels(new Uint8Array([0, 10, 3]), 10, 'my-labels'),
      'INVALID_DATA',
      /my-labels has label 10 at index 1/,
    );
    expect(e.details).toMatchObject({ index: 1, label: 10 });
    expectFineprune(() => validateLabels([1], 0), 'INVALID_ARGUMENT');
  });
});
