/**
 * Content hashes of a saved model: a SHA-256 of model.json (everything but the hashes themselves)
 * and one per weight, written by {@link fileSystem} under model.json's top-level
 * `finepruneIntegrity` key and checked on load. A flipped byte in a weights file or an edited step,
 * random state or mask in model.json is then a typed error, never a silent resume. The hashes
 * detect damage and edits; they are not a signature (whoever can edit the files can recompute them).
 */

import { ErrorCodes, type FinepruneError } from '@fineprune/tensor/errors';
import { type CheckedEntry, fileError, INTEGRITY_KEY, quote } from './model-json';
import type { NodeCrypto } from './node-modules';

/**
 * What model.json holds under `finepruneIntegrity`.
 *
 * @example
 * ```ts
 * const record: IntegrityRecord = JSON.parse(text).finepruneIntegrity;
 * console.log(record.weights['dense_1/kernel']); // 64 hex digits
 * ```
 */
export interface IntegrityRecord {
  algorithm: 'sha256';
  /** SHA-256 of `JSON.stringify(model.json without finepruneIntegrity)`. */
  document: string;
  /** SHA-256 of each weight's bytes, by weight name. */
  weights: Record<string, string>;
}

const HEX_DIGEST = /^[0-9a-f]{64}$/;

const TAMPERED_FIX =
  'The file was damaged or edited after it was saved; restore it from a backup or save again. A checkpoint that does not match its hashes cannot be resumed.';

function tampered(message: string, details: Record<string, unknown>): FinepruneError {
  return fileError(ErrorCodes.CHECKPOINT_CORRUPT, message, TAMPERED_FIX, details);
}

/** The hex SHA-256 of bytes or text. */
export function sha256(crypto: NodeCrypto, data: Uint8Array | string): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

/**
 * model.json text with its integrity record appended as the last key: the record hashes the
 * document text without it, and the weights' bytes entry by entry.
 */
export function sealedModelJson(
  crypto: NodeCrypto,
  document: Record<string, unknown>,
  entries: readonly CheckedEntry[],
  data: Uint8Array,
): string {
  const text = JSON.stringify(document);
  const weights: Record<string, string> = {};
  for (const { spec, begin, byteLength } of entries)
    weights[spec.name] = sha256(crypto, data.subarray(begin, begin + byteLength));
  const record: IntegrityRecord = { algorithm: 'sha256', document: sha256(crypto, text), weights };
  return `${text.slice(0, -1)}${text.length > 2 ? ',' : ''}${JSON.stringify(INTEGRITY_KEY)}:${JSON.stringify(record)}}`;
}

/**
 * Takes the integrity record out of a parsed model.json (the object is changed) and checks its
 * form. Returns undefined when the file has none.
 *
 * @throws FinepruneError `CHECKPOINT_CORRUPT` when the record is malformed
 */
export function takeIntegrityRecord(
  json: Record<string, unknown>,
  file: string,
): IntegrityRecord | undefined {
  if (!Object.hasOwn(json, INTEGRITY_KEY)) return undefined;
  const record = json[INTEGRITY_KEY] as Partial<IntegrityRecord> | null;
  delete json[INTEGRITY_KEY];
  const weights = record?.weights;
  const wellFormed =
    typeof record === 'object' &&
    record !== null &&
    record.algorithm === 'sha256' &&
    typeof record.document === 'string' &&
    HEX_DIGEST.test(record.document) &&
    typeof weights === 'object' &&
    weights !== null &&
    !Array.isArray(weights) &&
    Object.values(weights).every((digest) => typeof digest === 'string' && HEX_DIGEST.test(digest));
  if (!wellFormed)
    throw tampered(`${file} has a malformed ${INTEGRITY_KEY} record (content hashes).`, {
      file,
      entry: INTEGRITY_KEY,
    });
  return record as IntegrityRecord;
}

/**
 * Checks the document hash of a parsed model.json whose record was taken out.
 *
 * @throws FinepruneError `CHECKPOINT_CORRUPT` when model.json was edited after it was saved
 */
export function verifyDocument(
  crypto: NodeCrypto,
  json: Record<string, unknown>,
  record: IntegrityRecord,
  file: string,
): void {
  if (sha256(crypto, JSON.stringify(json)) !== record.document) {
    throw tampered(
      `${file} does not match its content hash: its topology, weights manifest or metadata (step, random state, masks' names) changed after it was saved.`,
      { file, entry: 'model.json' },
    );
  }
}

/**
 * Checks each weight's bytes against its recorded hash; `fileOf` names the weights file an
 * entry's bytes start in.
 *
 * @throws FinepruneError `CHECKPOINT_CORRUPT` naming the weights file and the weight
 */
export function verifyEntries(
  crypto: NodeCrypto,
  data: Uint8Array,
  entries: readonly CheckedEntry[],
  record: IntegrityRecord,
  fileOf: (offset: number) => string,
): void {
  const expected = new Set(Object.keys(record.weights));
  for (const { spec, begin, byteLength } of entries) {
    const digest = record.weights[spec.name];
    const file = fileOf(begin);
    if (digest === undefined)
      throw tampered(`${file} holds the weight ${quote(spec.name)}, which has no recorded content hash.`, {
        file,
        entry: spec.name.slice(0, 200),
      });
    expected.delete(spec.name);
    if (sha256(crypto, data.subarray(begin, begin + byteLength)) !== digest) {
      throw tampered(
        `The bytes of the weight ${quote(spec.name)} in ${file} do not match their content hash: the file was damaged or edited.`,
        { file, entry: spec.name.slice(0, 200) },
      );
    }
  }
  if (expected.size > 0) {
    const [name] = expected;
    throw tampered(`The content hashes name the weight ${quote(name)}, which the manifest lacks.`, {
      file: fileOf(0),
      entry: String(name).slice(0, 200),
    });
  }
}
