import { describe, expect, it } from 'vitest';
import { sha256Hex } from './digest';

describe('sha256Hex', () => {
  it('gives the FIPS 180-2 test vectors', async () => {
    // FIPS 180-2, Appendix B.1 ("abc") and the empty message.
    expect(await sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(await sha256Hex(new Uint8Array(0))).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });

  it('hashes a view of a larger buffer by its own bytes only', async () => {
    const buffer = new TextEncoder().encode('xxabcxx');
    expect(await sha256Hex(buffer.subarray(2, 5))).toBe(await sha256Hex('abc'));
  });
});
