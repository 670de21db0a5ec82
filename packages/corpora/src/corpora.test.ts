import { describe, expect, it } from 'vitest';
import { BROWN_GENRES, brownPlainText, loadBrown, loadMobyDick, loadSotu, loadSpamAssassin } from './corpora';

describe('brownPlainText', () => {
  it("drops tags, joins sentences and paragraphs, attaches punctuation and turns `` '' into \"", () => {
    const tagged =
      "\n\n\tThe/at jury/nn said/vbd ``/`` no/at ''/'' ,/, (/( twice/rb )/) ./.\nIt/pps ended/vbd ./.\n\n\n\tNew/jj para/nn ./.\n";
    expect(brownPlainText(tagged)).toBe('The jury said "no", (twice). It ended.\n\nNew para.');
  });

  it('keeps slashes inside words (the tag follows the last slash)', () => {
    expect(brownPlainText('1-1/2/cd inches/nns')).toBe('1-1/2 inches');
  });
});

describe('corpora (full loads)', () => {
  it('loads the 500 Brown texts in 15 genres with the documented counts', () => {
    const brown = loadBrown();
    expect(brown).toHaveLength(500);
    expect(new Set(brown.map((d) => d.id)).size).toBe(500);
    const perGenre = Object.fromEntries(
      BROWN_GENRES.map((g) => [g, brown.filter((d) => d.genre === g).length]),
    );
    // Francis & Kučera's sample counts per category (Brown Corpus Manual): A 44, B 27, … R 9.
    expect(perGenre).toEqual({
      news: 44,
      editorial: 27,
      reviews: 17,
      religion: 17,
      hobbies: 36,
      lore: 48,
      belles_lettres: 75,
      government: 30,
      learned: 80,
      fiction: 29,
      mystery: 24,
      science_fiction: 6,
      adventure: 29,
      romance: 29,
      humor: 9,
    });
    expect(brown[0]!.id).toBe('ca01');
    expect(brown[0]!.text.startsWith('The Fulton County Grand Jury said Friday an investigation')).toBe(true);
    // No word/tag pairs are left ("the/at", "jury/nn"), and every sample is ≈2,000 words long.
    expect(brown.filter((d) => /\b[a-z]+\/(at|nn|vbd|in|jj)\b/.test(d.text))).toEqual([]);
    expect(brown.every((d) => d.text.length > 9000)).toBe(true);
  });

  it('loads the 233 State of the Union addresses, oldest first', () => {
    const sotu = loadSotu();
    expect(sotu).toHaveLength(233);
    expect(sotu[0]!.title).toBe('George Washington, 1790');
    expect(sotu[0]!.text.startsWith('Fellow-Citizens of the Senate')).toBe(true);
    expect(sotu[232]!.id).toBe('2021_joseph_r_biden_d');
  });

  it('loads the 139 sections of Moby Dick in book order', () => {
    const book = loadMobyDick();
    expect(book).toHaveLength(139);
    expect(book.map((d) => d.id).slice(0, 4)).toEqual(['contents', 'etymology', 'extracts', 'chapter_1']);
    expect(book[3]!.title).toBe('Loomings.');
    expect(book[3]!.text).toContain('Call me Ishmael.');
    expect(book[138]!.id).toBe('epilogue');
  });

  it('loads the 6,046 SpamAssassin mails, 4,150 ham and 1,896 spam, without headers', () => {
    const mails = loadSpamAssassin();
    expect(mails).toHaveLength(6046);
    expect(mails.filter((m) => m.label === 'ham')).toHaveLength(4150);
    expect(mails.filter((m) => m.label === 'spam')).toHaveLength(1896);
    expect(new Set(mails.map((m) => m.id)).size).toBe(6046);
    // No body starts with a mail header line any more (every raw message starts with one).
    const withHeader = mails.filter((m) => /^(Return-Path|Received|From|Delivered-To):/.test(m.body));
    expect(withHeader.length).toBeLessThan(10);
    // HTML bodies lost their markup: 1,276 raw mails have a text/html part or an <html> tag; after
    // cleaning, 14 bodies (HTML fragments in plain text) still hold more than 10 tags.
    const markup = (body: string) =>
      (body.match(/<\/?(html|body|table|font|td|tr|p|br|div|a)\b[^>]*>/gi) ?? []).length;
    expect(mails.filter((m) => markup(m.body) > 10).length).toBeLessThan(20);
  });
});
