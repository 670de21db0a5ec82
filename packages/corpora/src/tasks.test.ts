import { errorOf } from '@fineprune/core/testing';
import { createBertTokenizer, type TextTask } from '@fineprune/text';
import { beforeAll, describe, expect, it } from 'vitest';
import { BROWN_GENRES, type BrownDocument, loadBrown, type SpamAssassinMessage } from './corpora';
import { brownGenreTask, spamTask } from './tasks';

const tokenizer = createBertTokenizer();

/** Every source is on one side only. */
function sourcesOverlap(task: TextTask): string[] {
  const train = new Set(task.train.map((e) => e.source));
  return [...new Set(task.dev.map((e) => e.source))].filter((s) => train.has(s));
}

describe('brownGenreTask', () => {
  let subset: BrownDocument[];
  let all: BrownDocument[];
  beforeAll(() => {
    all = loadBrown();
    // Two texts per genre: a fast but complete subset.
    subset = BROWN_GENRES.flatMap((genre) => all.filter((d) => d.genre === genre).slice(0, 2));
  });

  it('cuts texts into chunks of at most 126 wordpieces that re-tokenize to the whole text', () => {
    const task = brownGenreTask(tokenizer, { seed: 0, documents: subset });
    const examples = [...task.train, ...task.dev];
    let pieces = 0;
    for (const doc of subset) {
      const chunks = examples.filter((e) => e.source === doc.id);
      const chunkIds = chunks.flatMap((e) => Array.from(tokenizer.tokenIds(e.text)));
      // The chunks are consecutive and lose nothing: their wordpieces are exactly the text's.
      expect(chunkIds).toEqual(Array.from(tokenizer.tokenIds(doc.text)));
      for (const chunk of chunks) {
        expect(tokenizer.encode(chunk.text).ids.length).toBeLessThanOrEqual(128);
        expect(chunk.label).toBe(BROWN_GENRES.indexOf(doc.genre));
      }
      // Greedy filling: two neighbouring chunks would not fit into one.
      for (let i = 1; i < chunks.length; i++) {
        const joined =
          tokenizer.tokenIds(chunks[i - 1]!.text).length + tokenizer.tokenIds(chunks[i]!.text).length;
        expect(joined).toBeGreaterThan(126);
      }
      pieces += chunkIds.length;
    }
    expect(task.stats.wordpieces).toBe(pieces);
    expect(task.stats.overlongChunks).toBe(0);
  });

  it('splits by document, stratified so that every genre has train and dev texts', () => {
    const task = brownGenreTask(tokenizer, { seed: 3, documents: subset });
    expect(sourcesOverlap(task)).toEqual([]);
    for (const row of task.stats.perGenre) {
      // n = 2 per genre → clamp(round(0.2·2), 1, 1) = 1 dev text.
      expect([row.trainDocuments, row.devDocuments]).toEqual([1, 1]);
      const label = BROWN_GENRES.indexOf(row.genre);
      expect(task.train.filter((e) => e.label === label)).toHaveLength(row.trainChunks);
      expect(task.dev.filter((e) => e.label === label)).toHaveLength(row.devChunks);
    }
    expect(task.stats.devDocuments).toHaveLength(15);
    expect(new Set(task.dev.map((e) => e.source))).toEqual(new Set(task.stats.devDocuments));
    expect(task.labels).toEqual([...BROWN_GENRES]);
  });

  it('is deterministic in the seed and independent of the document order', () => {
    const a = brownGenreTask(tokenizer, { seed: 7, documents: subset });
    const b = brownGenreTask(tokenizer, { seed: 7, documents: [...subset].reverse() });
    expect(new Set(b.stats.devDocuments)).toEqual(new Set(a.stats.devDocuments));
    // 15 independent one-in-two choices: another seed agrees on all with probability 2^-15.
    const c = brownGenreTask(tokenizer, { seed: 8, documents: subset });
    expect(new Set(c.stats.devDocuments)).not.toEqual(new Set(a.stats.devDocuments));
  });

  it('rejects bad options', () => {
    expect(
      errorOf(() => brownGenreTask(tokenizer, { seed: 0, devFraction: 1, documents: subset })).code,
    ).toBe('INVALID_ARGUMENT');
    expect(
      errorOf(() => brownGenreTask(tokenizer, { seed: 0, chunkTokens: 2, documents: subset })).code,
    ).toBe('INVALID_ARGUMENT');
    expect(errorOf(() => brownGenreTask(tokenizer, { seed: 1.5, documents: subset })).code).toBe(
      'INVALID_ARGUMENT',
    );
    expect(
      errorOf(() => brownGenreTask(tokenizer, { seed: 0, documents: [subset[0]!, subset[0]!] })).code,
    ).toBe('INVALID_ARGUMENT');
  });

  it('builds the full task: 500 texts, 15 genres, ≈20% of each genre in dev, no text on both sides', () => {
    const task = brownGenreTask(tokenizer, { chunkTokens: 128, devFraction: 0.2, seed: 0, documents: all });
    expect(sourcesOverlap(task)).toEqual([]);
    const rows = task.stats.perGenre;
    expect(rows.reduce((s, r) => s + r.trainDocuments + r.devDocuments, 0)).toBe(500);
    for (const row of rows) {
      const n = row.trainDocuments + row.devDocuments;
      expect(row.devDocuments).toBe(Math.min(n - 1, Math.max(1, Math.round(0.2 * n))));
      expect(row.devChunks).toBeGreaterThan(0);
    }
    expect(task.train.length + task.dev.length).toBe(
      rows.reduce((s, r) => s + r.trainChunks + r.devChunks, 0),
    );
    // ≈1.29M wordpieces / 126 per chunk ≈ 10,300 full chunks; word boundaries leave chunks a bit shorter.
    expect(task.train.length + task.dev.length).toBeGreaterThan(10_260);
    expect(task.train.length + task.dev.length).toBeLessThan(10_800);
  });
});

function mail(id: string, label: 'ham' | 'spam', body: string): SpamAssassinMessage {
  return { id, label, group: label, body };
}

describe('spamTask', () => {
  const messages: SpamAssassinMessage[] = [
    mail('h1', 'ham', 'Hello  there\n friend'),
    mail('h2', 'ham', 'Hello there friend'), // duplicate of h1 once whitespace is collapsed
    mail('s1', 'spam', 'Buy now'),
    mail('h3', 'ham', 'Buy now'), // same text, other label: both copies go
    mail('s2', 'spam', '  \n '), // empty
    ...Array.from({ length: 10 }, (_, i) => mail(`hx${i}`, 'ham', `meeting notes number ${i}`)),
    ...Array.from({ length: 10 }, (_, i) => mail(`sx${i}`, 'spam', `cheap offer number ${i}`)),
  ];

  it('removes empty, duplicate and label-conflicting texts before splitting, and reports them', () => {
    const task = spamTask({ seed: 0, messages });
    expect(task.stats).toEqual({
      messages: 25,
      emptyRemoved: 1,
      duplicatesRemoved: 1,
      conflictingRemoved: 2,
      // 11 ham → round(2.2) = 2 dev; 10 spam → 2 dev.
      train: { ham: 9, spam: 8 },
      dev: { ham: 2, spam: 2 },
    });
    expect(task.labels).toEqual(['ham', 'spam']);
    const texts = [...task.train, ...task.dev].map((e) => e.text);
    expect(new Set(texts).size).toBe(texts.length);
    expect(texts).toContain('Hello there friend');
    expect(texts).not.toContain('Buy now');
    expect(sourcesOverlap(task)).toEqual([]);
  });

  it('cuts texts at maxChars on a space and dedupes what remains', () => {
    const task = spamTask({
      seed: 0,
      maxChars: 9,
      messages: [
        mail('a', 'ham', 'aaa bbb ccc ddd'),
        mail('b', 'ham', 'aaa bbb cXX yyy'), // same first 9 characters after the cut
        mail('c', 'spam', 'zzzzzzzzzzzzzz'),
        mail('d', 'spam', 'qqq'),
        mail('e', 'ham', 'rrr'),
      ],
    });
    const texts = [...task.train, ...task.dev].map((e) => e.text).sort();
    expect(texts).toEqual(['aaa bbb', 'qqq', 'rrr', 'zzzzzzzzz']);
    expect(task.stats.duplicatesRemoved).toBe(1);
  });

  it('is deterministic in the seed', () => {
    const a = spamTask({ seed: 5, messages });
    const b = spamTask({ seed: 5, messages: [...messages].reverse() });
    expect(new Set(b.dev.map((e) => e.source))).toEqual(new Set(a.dev.map((e) => e.source)));
  });

  it('rejects bad options', () => {
    expect(errorOf(() => spamTask({ seed: 0, devFraction: 0, messages })).code).toBe('INVALID_ARGUMENT');
    expect(errorOf(() => spamTask({ seed: 0, maxChars: 0, messages })).code).toBe('INVALID_ARGUMENT');
    expect(errorOf(() => spamTask({ seed: 0, messages: [messages[0]!, messages[0]!] })).code).toBe(
      'INVALID_ARGUMENT',
    );
  });

  it('builds the full task from the 6,046 mails with no text on both sides', () => {
    const task = spamTask({ devFraction: 0.2, seed: 0 });
    const { stats } = task;
    const kept = stats.train.ham + stats.train.spam + stats.dev.ham + stats.dev.spam;
    expect(kept + stats.emptyRemoved + stats.duplicatesRemoved + stats.conflictingRemoved).toBe(6046);
    expect(stats.duplicatesRemoved).toBeGreaterThan(0);
    const train = new Set(task.train.map((e) => e.text));
    expect(task.dev.filter((e) => train.has(e.text))).toEqual([]);
    expect(stats.dev.spam / (stats.train.spam + stats.dev.spam)).toBeCloseTo(0.2, 2);
    expect(task.train.every((e) => e.text.length <= 2000)).toBe(true);
  });
});
