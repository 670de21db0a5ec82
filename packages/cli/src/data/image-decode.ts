import * as jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { dataError } from './data-errors';

/**
 * The most pixels an image may have before it is decoded (4096 × 4096), so that a small file
 * declaring a huge image cannot exhaust memory.
 *
 * @example
 * ```ts
 * console.log(`images up to ${MAX_SOURCE_PIXELS} pixels are decoded`);
 * ```
 */
export const MAX_SOURCE_PIXELS = 4096 * 4096;

/**
 * What the header of an image file says, read before decoding.
 *
 * @example
 * ```ts
 * const header: ImageHeader = { format: 'png', width: 28, height: 28, interlaced: false };
 * ```
 */
export interface ImageHeader {
  format: 'png' | 'jpeg';
  width: number;
  height: number;
  interlaced: boolean;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function pngHeader(bytes: Uint8Array): ImageHeader | undefined {
  // Signature, then the IHDR chunk: length (4), "IHDR" (4), width (4), height (4), depth, colour type, compression, filter, interlace.
  if (bytes.length < 33 || String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    format: 'png',
    width: view.getUint32(16),
    height: view.getUint32(20),
    interlaced: bytes[28] !== 0,
  };
}

function jpegHeader(bytes: Uint8Array): ImageHeader | undefined {
  let at = 2;
  while (at + 9 < bytes.length) {
    if (bytes[at] !== 0xff) return undefined;
    const marker = bytes[at + 1]!;
    if (marker === 0xff) {
      at += 1;
      continue;
    }
    const length = (bytes[at + 2]! << 8) | bytes[at + 3]!;
    // Start-of-frame markers C0–CF, except DHT (C4), JPG (C8) and DAC (CC), give the frame size.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      const height = (bytes[at + 5]! << 8) | bytes[at + 6]!;
      const width = (bytes[at + 7]! << 8) | bytes[at + 8]!;
      return { format: 'jpeg', width, height, interlaced: marker === 0xc2 };
    }
    if (length < 2) return undefined;
    at += 2 + length;
  }
  return undefined;
}

/**
 * The format and size of a PNG or JPEG file from its first bytes, or undefined for anything else
 * (a text file, a GIF, a truncated image).
 *
 * @example
 * ```ts
 * imageHeader(readFileSync('digit.png')); // { format: 'png', width: 28, height: 28, interlaced: false }
 * ```
 */
export function imageHeader(bytes: Uint8Array): ImageHeader | undefined {
  if (PNG_SIGNATURE.every((value, index) => bytes[index] === value)) return pngHeader(bytes);
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return jpegHeader(bytes);
  return undefined;
}

/**
 * Decodes a PNG (pngjs) or JPEG (jpeg-js) file to RGBA bytes, as untrusted input: the header is read
 * first, images over {@link MAX_SOURCE_PIXELS} and interlaced PNGs (whose decoder inflates without a
 * size bound) are refused before any decoding, and JPEG decoding is strict with memory limits.
 *
 * @param bytes - the file
 * @param file - its path, for messages
 * @returns width, height and RGBA bytes (4 per pixel)
 * @throws FinepruneError `INVALID_DATA` naming the file for anything that is not a readable PNG or JPEG
 *
 * @example
 * ```ts
 * const { width, height, rgba } = decodeImage(readFileSync('cat.jpg'), 'cat.jpg');
 * ```
 */
export function decodeImage(
  bytes: Uint8Array,
  file: string,
): { width: number; height: number; rgba: Uint8Array } {
  const header = imageHeader(bytes);
  if (!header)
    throw dataError(
      { file },
      'is not a PNG or JPEG image.',
      'Keep only .png and .jpg images in the class folders.',
    );
  if (header.width < 1 || header.height < 1 || header.width * header.height > MAX_SOURCE_PIXELS) {
    throw dataError(
      { file },
      `declares a ${header.width} × ${header.height} image; images of 1 to ${MAX_SOURCE_PIXELS} pixels are read.`,
      'Resize the image, or check that the file is not damaged.',
    );
  }
  if (header.format === 'png' && header.interlaced)
    throw dataError(
      { file },
      'is an interlaced PNG, which is not read.',
      'Save the image without interlacing.',
    );
  try {
    if (header.format === 'png') {
      const decoded = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      return { width: decoded.width, height: decoded.height, rgba: new Uint8Array(decoded.data) };
    }
    const decoded = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: true,
      tolerantDecoding: false,
      maxResolutionInMP: MAX_SOURCE_PIXELS / 1e6,
      maxMemoryUsageInMB: 512,
    });
    return { width: decoded.width, height: decoded.height, rgba: decoded.data };
  } catch (error) {
    throw dataError(
      { file },
      `cannot be decoded as ${header.format.toUpperCase()}: ${(error as Error).message?.slice(0, 200)}`,
      'Re-save the image; the file may be damaged or truncated.',
      { cause: error },
    );
  }
}

/**
 * RGBA bytes → `channels` float values per pixel in [0, 1]: 3 for RGB, 1 for grey (the luma of
 * ITU-R BT.601, 0.299 R + 0.587 G + 0.114 B; an image whose R, G and B agree keeps that value
 * exactly). Alpha is ignored.
 *
 * @example
 * ```ts
 * const grey = toChannels(rgba, 28 * 28, 1); // Float32Array of 784 values in [0, 1]
 * ```
 */
export function toChannels(rgba: Uint8Array, pixels: number, channels: 1 | 3): Float32Array {
  const out = new Float32Array(pixels * channels);
  for (let pixel = 0; pixel < pixels; pixel++) {
    const r = rgba[pixel * 4]!;
    const g = rgba[pixel * 4 + 1]!;
    const b = rgba[pixel * 4 + 2]!;
    if (channels === 3) {
      out[pixel * 3] = r / 255;
      out[pixel * 3 + 1] = g / 255;
      out[pixel * 3 + 2] = b / 255;
    } else {
      out[pixel] = (r === g && g === b ? r : 0.299 * r + 0.587 * g + 0.114 * b) / 255;
    }
  }
  return out;
}

/**
 * Bilinear resampling of a `[height, width, channels]` image to `[toHeight, toWidth, channels]` with
 * half-pixel centres (the sample for output pixel x is at (x + 0.5)·width/toWidth − 0.5, clamped).
 *
 * @example
 * ```ts
 * const small = resizeBilinear(values, 56, 56, 1, 28, 28);
 * ```
 */
export function resizeBilinear(
  values: Float32Array,
  height: number,
  width: number,
  channels: number,
  toHeight: number,
  toWidth: number,
): Float32Array {
  const out = new Float32Array(toHeight * toWidth * channels);
  const source = (size: number, toSize: number, at: number) => {
    const position = Math.min(Math.max((at + 0.5) * (size / toSize) - 0.5, 0), size - 1);
    const low = Math.floor(position);
    return { low, high: Math.min(low + 1, size - 1), weight: position - low };
  };
  for (let y = 0; y < toHeight; y++) {
    const row = source(height, toHeight, y);
    for (let x = 0; x < toWidth; x++) {
      const column = source(width, toWidth, x);
      for (let c = 0; c < channels; c++) {
        const at = (yy: number, xx: number) => values[(yy * width + xx) * channels + c]!;
        const top = at(row.low, column.low) * (1 - column.weight) + at(row.low, column.high) * column.weight;
        const bottom =
          at(row.high, column.low) * (1 - column.weight) + at(row.high, column.high) * column.weight;
        out[(y * toWidth + x) * channels + c] = top * (1 - row.weight) + bottom * row.weight;
      }
    }
  }
  return out;
}
