/**
 * SHA-256 content hashes through the Web Crypto API, which browsers (in secure contexts, localhost
 * included) and Node.js 20 both provide as `globalThis.crypto.subtle`: the same code checks a file's
 * integrity on either side.
 */

import { ErrorCodes, FinepruneError } from './errors';

interface SubtleDigest {
  digest(algorithm: string, data: Uint8Array): Promise<ArrayBuffer>;
}

function subtleCrypto(): SubtleDigest {
  const subtle = (globalThis as { crypto?: { subtle?: SubtleDigest } }).crypto?.subtle;
  if (subtle === undefined || typeof subtle.digest !== 'function') {
    throw new FinepruneError({
      code: ErrorCodes.MISSING_DEPENDENCY,
      message:
        'Checking content hashes needs the Web Crypto API (crypto.subtle), which this environment does not offer.',
      fix: 'Serve the page over https or from localhost (browsers offer crypto.subtle only in secure contexts), or use Node.js 20 or later.',
    });
  }
  return subtle;
}

/**
 * The SHA-256 of bytes or of a text's UTF-8 encoding, as 64 lowercase hex digits.
 *
 * @param data - bytes, or text (hashed as UTF-8)
 * @returns the digest in hex
 * @throws FinepruneError `MISSING_DEPENDENCY` where `crypto.subtle` is missing (an insecure browser context)
 *
 * @example
 * ```ts
 * await sha256Hex('abc'); // 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
 * ```
 */
export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  const digest = new Uint8Array(await subtleCrypto().digest('SHA-256', bytes));
  let hex = '';
  for (const byte of digest) hex += byte.toString(16).padStart(2, '0');
  return hex;
}
