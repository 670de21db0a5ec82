/**
 * The bytes of a compact export: the 8 ASCII bytes `FPSPARSE`, the header length as a little-endian
 * uint32, the JSON header (UTF-8), then the data section, which the header's tensor entries tile.
 * The header carries SHA-256 hashes of itself (its text without the `integrity` field) and of the
 * data section; a reader checks both.
 */

import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { checkJsonBounds, sha256Hex } from '@fineprune/tensor/untrusted';
import { type CompactHeader, corruptCompact, type HeaderLimits, validateHeader } from './header';

/**
 * The first bytes of every compact export.
 *
 * @example
 * ```ts
 * new TextDecoder().decode(bytes.subarray(0, 8)) === COMPACT_MAGIC; // 'FPSPARSE'
 * ```
 */
export const COMPACT_MAGIC = 'FPSPARSE';
/** Magic plus the header length. */
const PREAMBLE_BYTES = 12;
/**
 * The largest header accepted, in bytes (a layers topology of thousands of layers fits).
 *
 * @example
 * ```ts
 * MAX_COMPACT_HEADER_BYTES; // 67108864
 * ```
 */
export const MAX_COMPACT_HEADER_BYTES = 64 * 1024 * 1024;
/** Deepest JSON nesting accepted in a header (a layers topology nests about 12 levels). */
const MAX_HEADER_DEPTH = 64;
/** Most JSON values accepted in a header. */
const MAX_HEADER_VALUES = 2_000_000;

/**
 * Whether `bytes` start with the compact export's magic bytes (nothing else is checked).
 *
 * @example
 * ```ts
 * if (isCompactModel(bytes)) model = await loadSparseLayersModel(bytes);
 * ```
 */
export function isCompactModel(bytes: Uint8Array): boolean {
  if (bytes.length < COMPACT_MAGIC.length) return false;
  for (let index = 0; index < COMPACT_MAGIC.length; index += 1)
    if (bytes[index] !== COMPACT_MAGIC.charCodeAt(index)) return false;
  return true;
}

/**
 * The file bytes of a header (without its integrity record) and a data section: the record is
 * computed and added as the header's last field. Nothing is checked: for tools and tests that write
 * headers of their own (readers check everything).
 *
 * @param header - the header (an `integrity` field is ignored and replaced)
 * @param data - the data section
 * @returns the file bytes
 *
 * @example
 * ```ts
 * const edited = await assembleCompactModel({ ...header, tensors: renamed }, data);
 * ```
 */
export async function assembleCompactModel(header: CompactHeader, data: Uint8Array): Promise<Uint8Array> {
  const { integrity: _integrity, ...fields } = header;
  const text = JSON.stringify(fields);
  const integrity = { algorithm: 'sha256', header: await sha256Hex(text), data: await sha256Hex(data) };
  const sealed = new TextEncoder().encode(`${text.slice(0, -1)},"integrity":${JSON.stringify(integrity)}}`);
  const bytes = new Uint8Array(PREAMBLE_BYTES + sealed.length + data.length);
  for (let index = 0; index < COMPACT_MAGIC.length; index += 1)
    bytes[index] = COMPACT_MAGIC.charCodeAt(index);
  new DataView(bytes.buffer).setUint32(COMPACT_MAGIC.length, sealed.length, true);
  bytes.set(sealed, PREAMBLE_BYTES);
  bytes.set(data, PREAMBLE_BYTES + sealed.length);
  return bytes;
}

/** A compact export split into its checked header and its data section. */
export interface SplitCompactModel {
  header: CompactHeader;
  /** The data section (a view into the file bytes). */
  data: Uint8Array;
}

function parseHeader(text: string, source: string): unknown {
  const excess = checkJsonBounds(text, { maxDepth: MAX_HEADER_DEPTH, maxValues: MAX_HEADER_VALUES });
  if (excess)
    throw corruptCompact(source, '', `its header ${excess.description} (at character ${excess.offset})`);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw corruptCompact(
      source,
      '',
      `its header is not valid JSON (${(error as Error).message.slice(0, 200)})`,
    );
  }
}

const HEX_DIGEST = /^[0-9a-f]{64}$/;

/** Takes the integrity record out of a parsed header and checks both hashes. */
async function verifyIntegrity(
  json: Record<string, unknown>,
  data: Uint8Array,
  source: string,
): Promise<void> {
  const record = json.integrity as Record<string, unknown> | undefined;
  delete json.integrity;
  if (
    typeof record !== 'object' ||
    record === null ||
    record.algorithm !== 'sha256' ||
    typeof record.header !== 'string' ||
    !HEX_DIGEST.test(record.header) ||
    typeof record.data !== 'string' ||
    !HEX_DIGEST.test(record.data)
  )
    throw corruptCompact(source, 'integrity', 'its content hashes are missing or malformed');
  if ((await sha256Hex(JSON.stringify(json))) !== record.header)
    throw corruptCompact(
      source,
      'header',
      'the header does not match its content hash: it was edited after export',
    );
  if ((await sha256Hex(data)) !== record.data)
    throw corruptCompact(
      source,
      'data',
      'the tensor data do not match their content hash: the file was damaged or edited',
    );
}

/**
 * Splits and checks the bytes of a compact export: the magic bytes, a header length inside the file
 * and the limit, bounded JSON, the content hashes, and the header's fields and byte ranges (see
 * `validateHeader`). Nothing is decoded yet.
 *
 * @throws FinepruneError `CHECKPOINT_CORRUPT` (or `CHECKPOINT_MISMATCH` for another format version)
 *   naming `source`
 */
export async function splitCompactModel(
  bytes: Uint8Array,
  source: string,
  limits: HeaderLimits,
): Promise<SplitCompactModel> {
  if (!(bytes instanceof Uint8Array))
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `A compact export is read from bytes (a Uint8Array), got ${typeof bytes}.`,
      fix: 'Pass the file contents, for example new Uint8Array(await response.arrayBuffer()).',
    });
  if (!isCompactModel(bytes))
    throw corruptCompact(
      source,
      '',
      `it does not start with "${COMPACT_MAGIC}": it is not a compact sparse export`,
    );
  if (bytes.length < PREAMBLE_BYTES) throw corruptCompact(source, '', 'it ends inside its preamble');
  const headerBytes = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(
    COMPACT_MAGIC.length,
    true,
  );
  if (headerBytes > MAX_COMPACT_HEADER_BYTES || PREAMBLE_BYTES + headerBytes > bytes.length)
    throw corruptCompact(
      source,
      '',
      `its header length ${headerBytes} exceeds the file (${bytes.length} bytes) or the ${MAX_COMPACT_HEADER_BYTES}-byte limit`,
    );
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(
      bytes.subarray(PREAMBLE_BYTES, PREAMBLE_BYTES + headerBytes),
    );
  } catch {
    throw corruptCompact(source, '', 'its header is not UTF-8 text');
  }
  const json = parseHeader(text, source);
  const data = bytes.subarray(PREAMBLE_BYTES + headerBytes);
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw corruptCompact(source, '', 'its header is not a JSON object');
  const header = validateHeader(json, source, limits);
  await verifyIntegrity(json as Record<string, unknown>, data, source);
  if (data.length !== header.dataBytes)
    throw corruptCompact(
      source,
      '',
      `its data section holds ${data.length} bytes; the header describes ${header.dataBytes}`,
    );
  return { header, data };
}
