/**
 * Encoding one example at a fixed length, reading only as much of a long text as the length needs,
 * and collecting encoded examples into the flat arrays of {@link EncodedExamples} one at a time (for
 * data streamed from a file).
 */

import { check } from '@fineprune/tensor/errors';
import type { BertTokenizer, Encoded } from './tokenizer';

/** ASCII whitespace: a word boundary for every BERT normaliser and pre-tokenizer. */
const BOUNDARY = /[ \t\n\r]/g;

/**
 * The shortest prefix of `text` cut at ASCII whitespace that has at least `count` wordpieces (the
 * whole text when it has fewer), with its wordpiece count. BERT splits words at whitespace before
 * WordPiece, so the wordpieces of such a prefix are the first wordpieces of the whole text, and a
 * 10 MB text costs no more than its first words. Prefixes grow fourfold from about 16 characters
 * per wordpiece wanted.
 */
function leadingText(
  tokenizer: BertTokenizer,
  text: string,
  count: number,
): { text: string; pieces: number } {
  let budget = 16 * count + 64;
  while (budget < text.length) {
    BOUNDARY.lastIndex = budget;
    const cut = BOUNDARY.exec(text)?.index;
    if (cut === undefined) break;
    const prefix = text.slice(0, cut);
    const pieces = tokenizer.tokenIds(prefix).length;
    if (pieces >= count) return { text: prefix, pieces };
    budget *= 4;
  }
  return { text, pieces: tokenizer.tokenIds(text).length };
}

/**
 * Examples already encoded: row `i` of each `[n · maxLength]` array is example `i`. What
 * {@link TextBatchSource.encoded} returns and {@link batchesFromEncoded} takes.
 *
 * @example
 * ```ts
 * const encoded: EncodedExamples = source.encoded();
 * encoded.inputIds.length === encoded.labels.length * encoded.maxLength; // true
 * ```
 */
export interface EncodedExamples {
  /** Sequence length L. */
  readonly maxLength: number;
  /** Token ids, `n · L` non-negative integers. */
  readonly inputIds: Int32Array;
  /** Segment ids, `n · L` values in 0 … 1. */
  readonly tokenTypeIds: Int32Array;
  /** `n · L` values in 0 … 1 (1 on real tokens). */
  readonly attentionMask: Int32Array;
  /** `n` non-negative integer labels. */
  readonly labels: Int32Array;
  /** How many texts were truncated when they were encoded (information only). */
  readonly truncated?: number;
}

/**
 * Options of {@link encodeTruncated}.
 *
 * @example
 * ```ts
 * const options: EncodeTruncatedOptions = { maxLength: 128, pair: 'second sentence' };
 * ```
 */
export interface EncodeTruncatedOptions {
  /** Length of the result, `[CLS]` and `[SEP]` included (at least 2, or 3 with a pair). */
  maxLength: number;
  /** A second segment (`[CLS] A [SEP] B [SEP]`). */
  pair?: string;
}

/**
 * Encodes a text (or a pair) padded to `maxLength`, truncated as `tokenizer.encode(…, { maxLength })`
 * truncates (longest segment first), and says whether anything was cut. Only the first wordpieces
 * that can be kept are computed, so a very long text costs about what `maxLength` wordpieces cost.
 *
 * @returns the encoding (arrays of length `maxLength`) and whether the text was truncated
 * @throws FinepruneError `INVALID_ARGUMENT` for a `maxLength` too small for the special tokens
 *
 * @example
 * ```ts
 * const { encoded, truncated } = encodeTruncated(createBertTokenizer(), 'Hello, world!', { maxLength: 4 });
 * // encoded.ids: [101, 7592, 1010, 102], truncated: true
 * ```
 */
export function encodeTruncated(
  tokenizer: BertTokenizer,
  text: string,
  options: EncodeTruncatedOptions,
): { encoded: Encoded; truncated: boolean } {
  const { maxLength, pair } = options;
  const specials = pair === undefined ? 2 : 3;
  check(
    Number.isInteger(maxLength) && maxLength >= specials,
    `maxLength must be an integer of at least ${specials}, got ${maxLength}.`,
    'Pass the encoder length, e.g. 128.',
  );
  const budget = maxLength - specials;
  // Longest-first truncation of segments of a and b wordpieces down to `budget` passes through
  // (min(a, budget), min(b, budget)); so prefixes of more than `budget` wordpieces truncate alike.
  const first = leadingText(tokenizer, text, budget + 1);
  const second = pair === undefined ? undefined : leadingText(tokenizer, pair, budget + 1);
  const truncated = first.pieces + (second?.pieces ?? 0) > budget;
  const encoded = tokenizer.encode(first.text, {
    ...(second !== undefined ? { pair: second.text } : {}),
    maxLength,
    padToMaxLength: true,
  });
  return { encoded, truncated };
}

/**
 * Collects encoded examples one at a time into the flat arrays of {@link EncodedExamples} (capacity
 * doubles as needed), for data read row by row.
 *
 * @example
 * ```ts
 * const builder = new EncodedExamplesBuilder(128);
 * for (const row of rows) builder.add(encodeTruncated(tokenizer, row.text, { maxLength: 128 }), row.label);
 * const encoded = builder.build();
 * ```
 */
export class EncodedExamplesBuilder {
  /** Sequence length L. */
  readonly maxLength: number;
  private ids: Int32Array;
  private types: Int32Array;
  private mask: Int32Array;
  private labels: Int32Array;
  private count = 0;
  private truncatedCount = 0;

  constructor(maxLength: number, initialCapacity = 64) {
    check(
      Number.isInteger(maxLength) && maxLength >= 2,
      `maxLength must be an integer of at least 2, got ${maxLength}.`,
      'Pass the encoder length, e.g. 128.',
    );
    this.maxLength = maxLength;
    const capacity = Math.max(1, initialCapacity);
    this.ids = new Int32Array(capacity * maxLength);
    this.types = new Int32Array(capacity * maxLength);
    this.mask = new Int32Array(capacity * maxLength);
    this.labels = new Int32Array(capacity);
  }

  /** Number of examples added. */
  get size(): number {
    return this.count;
  }

  /** Adds one example: an encoding of length `maxLength` (see {@link encodeTruncated}) and its label. */
  add(example: { encoded: Encoded; truncated: boolean }, label: number): void {
    const { encoded } = example;
    check(
      encoded.ids.length === this.maxLength,
      `An encoding of length ${encoded.ids.length} was added to examples of length ${this.maxLength}.`,
      'Encode with the same maxLength (encodeTruncated pads to it).',
    );
    if (this.count === this.labels.length) this.grow();
    const at = this.count * this.maxLength;
    this.ids.set(encoded.ids, at);
    this.types.set(encoded.tokenTypeIds, at);
    this.mask.set(encoded.attentionMask, at);
    this.labels[this.count] = label;
    this.count++;
    if (example.truncated) this.truncatedCount++;
  }

  /** Replaces the label of example `index` (labels named before the label set was known). */
  relabel(index: number, label: number): void {
    check(
      Number.isInteger(index) && index >= 0 && index < this.count,
      `No example ${index}.`,
      'Pass an index below size.',
    );
    this.labels[index] = label;
  }

  /** The label of example `index`. */
  label(index: number): number {
    return this.labels[index]!;
  }

  /** The examples as {@link EncodedExamples} (the arrays are trimmed copies). */
  build(): EncodedExamples {
    const length = this.count * this.maxLength;
    return {
      maxLength: this.maxLength,
      inputIds: this.ids.slice(0, length),
      tokenTypeIds: this.types.slice(0, length),
      attentionMask: this.mask.slice(0, length),
      labels: this.labels.slice(0, this.count),
      truncated: this.truncatedCount,
    };
  }

  private grow(): void {
    const capacity = this.labels.length * 2;
    const larger = (array: Int32Array, size: number) => {
      const next = new Int32Array(size);
      next.set(array);
      return next;
    };
    this.ids = larger(this.ids, capacity * this.maxLength);
    this.types = larger(this.types, capacity * this.maxLength);
    this.mask = larger(this.mask, capacity * this.maxLength);
    this.labels = larger(this.labels, capacity);
  }
}
