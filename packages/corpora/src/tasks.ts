/**
 * Downstream classification tasks with honest, seeded splits: Brown genre (split by document) and
 * SpamAssassin spam/ham (split by message, duplicates removed first).
 */

import { check } from '@fineprune/tensor/errors';
import {
  type BertTokenizer,
  chunkText,
  randomBelow,
  StreamDomain,
  streamRandom,
  type TextExample,
  type TextTask,
} from '@fineprune/text';
import {
  BROWN_GENRES,
  type BrownDocument,
  type BrownGenre,
  loadBrown,
  loadSpamAssassin,
  type SpamAssassinMessage,
} from './corpora';

/**
 * Options of {@link brownGenreTask}.
 *
 * @example
 * ```ts
 * const options: BrownTaskOptions = { chunkTokens: 128, devFraction: 0.2, seed: 1 };
 * ```
 */
export interface BrownTaskOptions {
  /** Wordpieces per chunk including `[CLS]` and `[SEP]` (so chunks hold `chunkTokens − 2`). Default 128. */
  chunkTokens?: number;
  /** Share of each genre's documents that go to dev, in (0, 1). Default 0.2. */
  devFraction?: number;
  /** Seed of the split; any safe integer. */
  seed: number;
  /** The documents to use; default all 500 of {@link loadBrown}. */
  documents?: readonly BrownDocument[];
}

/**
 * Counts of one Brown genre.
 *
 * @example
 * ```ts
 * const row: BrownGenreCounts = { genre: 'humor', trainDocuments: 7, devDocuments: 2, trainChunks: 130, devChunks: 37 };
 * ```
 */
export interface BrownGenreCounts {
  readonly genre: BrownGenre;
  readonly trainDocuments: number;
  readonly devDocuments: number;
  readonly trainChunks: number;
  readonly devChunks: number;
}

/**
 * What {@link brownGenreTask} built.
 *
 * @example
 * ```ts
 * for (const row of task.stats.perGenre) console.log(row.genre, row.trainChunks, row.devChunks);
 * ```
 */
export interface BrownTaskStats {
  /** Chunk size including `[CLS]`/`[SEP]`. */
  readonly chunkTokens: number;
  /** Counts per genre, in {@link BROWN_GENRES} order. */
  readonly perGenre: readonly BrownGenreCounts[];
  /** Total wordpieces over all documents (without `[CLS]`/`[SEP]`). */
  readonly wordpieces: number;
  /** Chunks that still exceed `chunkTokens − 2` (a single unbreakable word longer than that); 0 for `chunkTokens ≥ 102`. */
  readonly overlongChunks: number;
  /** Ids of the dev documents. */
  readonly devDocuments: readonly string[];
}

function checkFraction(devFraction: number): void {
  check(
    typeof devFraction === 'number' && devFraction > 0 && devFraction < 1,
    `devFraction must be a number in (0, 1), got ${devFraction}.`,
    'Pass a share such as 0.2.',
  );
}

/**
 * Chooses dev items per class: `clamp(round(f·n), 1, n − 1)` of each class's `n ≥ 2` items by a
 * seeded shuffle (a class with one item stays in train). Items are ordered by id before shuffling,
 * so the result does not depend on the input order.
 */
function stratifiedDevSet(
  items: readonly { id: string; label: number }[],
  devFraction: number,
  seed: number,
  domain: number,
): Set<string> {
  const byLabel = new Map<number, string[]>();
  for (const item of items) {
    const list = byLabel.get(item.label) ?? [];
    list.push(item.id);
    byLabel.set(item.label, list);
  }
  const dev = new Set<string>();
  for (const [label, ids] of [...byLabel].sort((x, y) => x[0] - y[0])) {
    if (ids.length < 2) continue;
    ids.sort();
    const random = streamRandom(seed, domain, label);
    // Partial Fisher–Yates: the first `count` slots become a uniform random subset.
    const count = Math.min(ids.length - 1, Math.max(1, Math.round(devFraction * ids.length)));
    for (let i = 0; i < count; i++) {
      const j = i + randomBelow(random, ids.length - i);
      [ids[i], ids[j]] = [ids[j]!, ids[i]!];
      dev.add(ids[i]!);
    }
  }
  return dev;
}

/**
 * The Brown genre classification task: each text is cut into consecutive chunks of at most
 * `chunkTokens − 2` wordpieces (at word boundaries, so a chunk's text re-encodes to exactly its
 * wordpieces plus `[CLS]`/`[SEP]`), and the split is **by document**, stratified per genre: each
 * genre sends `clamp(round(devFraction·n), 1, n − 1)` of its `n` texts, chosen by a seeded
 * shuffle, to dev, so every genre has dev documents and no text is on both sides. Labels are
 * indices into {@link BROWN_GENRES}.
 *
 * @param tokenizer - Counts wordpieces.
 * @param options - `chunkTokens` (default 128), `devFraction` (default 0.2), `seed`, `documents`.
 * @returns A {@link TextTask} with {@link BrownTaskStats} (chunk counts per genre and split).
 * @throws FinepruneError `INVALID_ARGUMENT` for a bad option or documents with ids repeated.
 *
 * @example
 * ```ts
 * import { brownGenreTask } from '@fineprune/corpora';
 * import { createBertTokenizer } from '@fineprune/text';
 *
 * const task = brownGenreTask(createBertTokenizer(), { chunkTokens: 128, devFraction: 0.2, seed: 0 });
 * console.log(task.train.length, task.dev.length, task.stats.perGenre[0]);
 * ```
 */
export function brownGenreTask(
  tokenizer: BertTokenizer,
  options: BrownTaskOptions,
): TextTask<BrownTaskStats> {
  const { chunkTokens = 128, devFraction = 0.2, seed = Number.NaN, documents } = options ?? {};
  check(
    Number.isInteger(chunkTokens) && chunkTokens >= 3,
    `chunkTokens must be an integer of at least 3, got ${chunkTokens}.`,
    'Pass the encoder length, e.g. 128.',
  );
  checkFraction(devFraction);
  check(
    Number.isSafeInteger(seed),
    `seed must be a safe integer, got ${seed}.`,
    'Pass an integer seed such as 0.',
  );
  const docs = documents ?? loadBrown();
  const ids = new Set<string>();
  for (const doc of docs) {
    check(
      doc !== null &&
        typeof doc === 'object' &&
        typeof doc.text === 'string' &&
        BROWN_GENRES.includes(doc.genre),
      'Each document needs a string text and a genre from BROWN_GENRES.',
      'Pass documents from loadBrown().',
    );
    check(!ids.has(doc.id), `Document id ${doc.id} appears twice.`, 'Pass each Brown text once.');
    ids.add(doc.id);
  }
  const labelOf = (doc: BrownDocument) => BROWN_GENRES.indexOf(doc.genre);
  const dev = stratifiedDevSet(
    docs.map((doc) => ({ id: doc.id, label: labelOf(doc) })),
    devFraction,
    seed,
    StreamDomain.brownSplit,
  );
  const train: TextExample[] = [];
  const devExamples: TextExample[] = [];
  const counts = BROWN_GENRES.map((genre) => ({
    genre,
    trainDocuments: 0,
    devDocuments: 0,
    trainChunks: 0,
    devChunks: 0,
  }));
  const cache = new Map<string, number>();
  let wordpieces = 0;
  let overlongChunks = 0;
  for (const doc of docs) {
    const label = labelOf(doc);
    const { chunks, wordpieces: pieces, overlong } = chunkText(tokenizer, doc.text, chunkTokens - 2, cache);
    wordpieces += pieces;
    overlongChunks += overlong;
    const isDev = dev.has(doc.id);
    const row = counts[label]!;
    if (isDev) {
      row.devDocuments++;
      row.devChunks += chunks.length;
    } else {
      row.trainDocuments++;
      row.trainChunks += chunks.length;
    }
    for (const text of chunks) (isDev ? devExamples : train).push({ text, label, source: doc.id });
  }
  return {
    name: 'brown-genre',
    labels: [...BROWN_GENRES],
    train,
    dev: devExamples,
    stats: {
      chunkTokens,
      perGenre: counts,
      wordpieces,
      overlongChunks,
      devDocuments: docs.filter((doc) => dev.has(doc.id)).map((doc) => doc.id),
    },
  };
}

/**
 * Options of {@link spamTask}.
 *
 * @example
 * ```ts
 * const options: SpamTaskOptions = { devFraction: 0.2, seed: 0, maxChars: 2000 };
 * ```
 */
export interface SpamTaskOptions {
  /** Share of each label's messages that go to dev, in (0, 1). Default 0.2. */
  devFraction?: number;
  /** Seed of the split; any safe integer. */
  seed: number;
  /**
   * Longest example text in characters (cut at the last whitespace before the limit); `Infinity`
   * keeps whole bodies. Default 2000 (≈500 wordpieces, more than a 128- or 512-token encoder reads).
   */
  maxChars?: number;
  /** The messages to use; default all 6,046 of {@link loadSpamAssassin}. */
  messages?: readonly SpamAssassinMessage[];
}

/**
 * What {@link spamTask} built.
 *
 * @example
 * ```ts
 * console.log(`${task.stats.duplicatesRemoved} duplicate bodies removed`);
 * ```
 */
export interface SpamTaskStats {
  /** Messages given. */
  readonly messages: number;
  /** Messages whose body was empty after cleaning. */
  readonly emptyRemoved: number;
  /** Later copies of an example text already seen with the same label. */
  readonly duplicatesRemoved: number;
  /** Messages whose text also occurs with the other label (all copies removed). */
  readonly conflictingRemoved: number;
  /** Examples per label and split. */
  readonly train: { readonly ham: number; readonly spam: number };
  readonly dev: { readonly ham: number; readonly spam: number };
}

/** Whitespace runs collapsed to one space, trimmed, cut at `maxChars` (at a space when there is one). */
function exampleText(body: string, maxChars: number): string {
  const text = body.replace(/\s+/g, ' ').trim();
  if (text.length <= maxChars) return text;
  const cut = text.lastIndexOf(' ', maxChars);
  return text.slice(0, cut > 0 ? cut : maxChars);
}

/**
 * The SpamAssassin spam-vs-ham task (labels `['ham', 'spam']`). Each body ({@link mailBody}) has
 * its whitespace collapsed and is cut to `maxChars`; empty texts are dropped; then **exact
 * duplicates are removed before splitting** — a text seen before with the same label is dropped,
 * a text that occurs with both labels is dropped entirely — so no text is in both train and dev.
 * The split is by message, stratified by label, `clamp(round(devFraction·n), 1, n − 1)` per label
 * by a seeded shuffle.
 *
 * @param options - `devFraction` (default 0.2), `seed`, `maxChars` (default 2000), `messages`.
 * @returns A {@link TextTask} with {@link SpamTaskStats}.
 * @throws FinepruneError `INVALID_ARGUMENT` for a bad option, a malformed message or repeated ids.
 *
 * @example
 * ```ts
 * import { spamTask } from '@fineprune/corpora';
 *
 * const task = spamTask({ devFraction: 0.2, seed: 0 });
 * console.log(task.stats.duplicatesRemoved, task.stats.train, task.stats.dev);
 * ```
 */
export function spamTask(options: SpamTaskOptions): TextTask<SpamTaskStats> {
  const { devFraction = 0.2, seed = Number.NaN, maxChars = 2000, messages } = options ?? {};
  checkFraction(devFraction);
  check(
    Number.isSafeInteger(seed),
    `seed must be a safe integer, got ${seed}.`,
    'Pass an integer seed such as 0.',
  );
  check(
    maxChars === Number.POSITIVE_INFINITY || (Number.isInteger(maxChars) && maxChars >= 1),
    `maxChars must be a positive integer or Infinity, got ${maxChars}.`,
    'Pass a limit such as 2000.',
  );
  const mails = messages ?? loadSpamAssassin();
  const labels = ['ham', 'spam'] as const;
  const ids = new Set<string>();
  const groups = new Map<string, { id: string; label: number }[]>();
  let emptyRemoved = 0;
  for (const mail of mails) {
    check(
      mail !== null &&
        typeof mail === 'object' &&
        typeof mail.body === 'string' &&
        labels.includes(mail.label),
      'Each message needs a string body and a label of "ham" or "spam".',
      'Pass messages from loadSpamAssassin().',
    );
    check(!ids.has(mail.id), `Message id ${mail.id} appears twice.`, 'Pass each message once.');
    ids.add(mail.id);
    const text = exampleText(mail.body, maxChars);
    if (text.length === 0) {
      emptyRemoved++;
      continue;
    }
    const group = groups.get(text) ?? [];
    group.push({ id: mail.id, label: labels.indexOf(mail.label) });
    groups.set(text, group);
  }
  let duplicatesRemoved = 0;
  let conflictingRemoved = 0;
  const items: { id: string; label: number; text: string }[] = [];
  for (const [text, group] of groups) {
    if (group.some((copy) => copy.label !== group[0]!.label)) {
      conflictingRemoved += group.length;
      continue;
    }
    duplicatesRemoved += group.length - 1;
    items.push({ ...group[0]!, text });
  }
  const dev = stratifiedDevSet(items, devFraction, seed, StreamDomain.spamSplit);
  const train: TextExample[] = [];
  const devExamples: TextExample[] = [];
  for (const { id, label, text } of items)
    (dev.has(id) ? devExamples : train).push({ text, label, source: id });
  const tally = (examples: TextExample[]) => ({
    ham: examples.filter((e) => e.label === 0).length,
    spam: examples.filter((e) => e.label === 1).length,
  });
  return {
    name: 'spam-assassin',
    labels: [...labels],
    train,
    dev: devExamples,
    stats: {
      messages: mails.length,
      emptyRemoved,
      duplicatesRemoved,
      conflictingRemoved,
      train: tally(train),
      dev: tally(devExamples),
    },
  };
}
