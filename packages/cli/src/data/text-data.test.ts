import { createWriteStream, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FinepruneError } from '@fineprune/core';
import type { RecipeTextData } from '@fineprune/recipes';
import { createBertTokenizer } from '@fineprune/text';
import { describe, expect, it } from 'vitest';
import { temporaryDirectory } from '../../test/support';
import { readBoundedLines } from './bounded-lines';
import { loadTextData } from './text-data';
import { readTextRows, type TextRow } from './text-rows';

const tokenizer = createBertTokenizer();

/** `data.text` with the schema's defaults (1 MiB rows). */
function textSource(train: string, overrides: Partial<RecipeTextData> = {}): RecipeTextData {
  return {
    train,
    delimiter: ',',
    textColumn: 'text',
    labelColumn: 'label',
    maxRowBytes: 1024 * 1024,
    ...overrides,
  };
}

function write(directory: string, name: string, text: string): string {
  const file = path.join(directory, name);
  writeFileSync(file, text);
  return file;
}

async function rows(file: string, overrides: Partial<RecipeTextData> = {}): Promise<TextRow[]> {
  const out: TextRow[] = [];
  for await (const row of readTextRows(file, textSource(file, overrides))) out.push(row);
  return out;
}

async function rejection(promise: Promise<unknown>): Promise<FinepruneError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(FinepruneError.is(error), String(error)).toBe(true);
  return error as FinepruneError;
}

/** Samples resident memory every 5 ms while `run` goes on; returns the growth over the start. */
async function residentGrowth(run: () => Promise<unknown>): Promise<{ growth: number; error: unknown }> {
  globalThis.gc?.();
  const start = process.memoryUsage().rss;
  let peak = start;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 5);
  let error: unknown;
  try {
    await run();
  } catch (caught) {
    error = caught;
  } finally {
    clearInterval(timer);
  }
  peak = Math.max(peak, process.memoryUsage().rss);
  return { growth: peak - start, error };
}

/** Writes `lines` lines of `line(i)` through a stream (the test never holds the file). */
async function writeLines(file: string, count: number, line: (index: number) => string): Promise<void> {
  const stream = createWriteStream(file);
  for (let index = 0; index < count; index++) {
    if (!stream.write(line(index)))
      await new Promise<void>((resolve) => stream.once('drain', () => resolve()));
  }
  await new Promise<void>((resolve, reject) =>
    stream.end((error?: Error | null) => (error ? reject(error) : resolve())),
  );
}

describe('text rows (CSV and JSONL), read as untrusted files', () => {
  it('reads RFC 4180 CSV (quoted delimiters, doubled quotes, line breaks in quotes) with the line each row starts on', async () => {
    const directory = temporaryDirectory();
    const file = write(
      directory,
      'train.csv',
      'label,text\r\nham,"Hello, world"\r\n\r\nspam,"say ""hi""\nnow"\nham,plain\n',
    );
    expect(await rows(file)).toEqual([
      { text: 'Hello, world', label: 'ham', line: 2 },
      { text: 'say "hi"\nnow', label: 'spam', line: 4 },
      { text: 'plain', label: 'ham', line: 6 },
    ]);
  });

  it('reads JSONL rows with numeric labels and sentence pairs, dropping a byte-order mark', async () => {
    const directory = temporaryDirectory();
    const file = write(
      directory,
      'pairs.jsonl',
      '\uFEFF{"a": "first", "b": "second", "y": 1}\n\n{"a": "x", "b": "y", "y": 0}\n',
    );
    expect(await rows(file, { textColumn: 'a', pairColumn: 'b', labelColumn: 'y' })).toEqual([
      { text: 'first', pair: 'second', label: '1', line: 1 },
      { text: 'x', pair: 'y', label: '0', line: 3 },
    ]);
  });

  it.each([
    [
      'a stray quote in an unquoted CSV field',
      'bad.csv',
      'text,label\nok,ham\nsa"y,spam\n',
      3,
      /quote inside the unquoted field 1/,
    ],
    ['text after a closing quote', 'bad.csv', 'text,label\n"a"b,ham\n', 2, /after the closing quote/],
    [
      'a quote left open to the end of the file',
      'bad.csv',
      'text,label\nok,ham\n"never closed,spam\nmore\n',
      3,
      /never closed/,
    ],
    ['a row with too few fields', 'bad.csv', 'text,label\nok,ham\nalone\n', 3, /has 1 fields, the header 2/],
    [
      'a CSV header without the label column',
      'bad.csv',
      'text,category\nok,ham\n',
      1,
      /header names no column "label"/,
    ],
    [
      'a JSONL line that is not JSON',
      'bad.jsonl',
      '{"text": "ok", "label": "ham"}\n{"text": "cut\n',
      2,
      /is not valid JSON/,
    ],
    [
      'a JSONL line that is an array',
      'bad.jsonl',
      '{"text": "ok", "label": "ham"}\n["ok", "ham"]\n',
      2,
      /is not a JSON object/,
    ],
    [
      'a JSONL row without a label',
      'bad.jsonl',
      '{"text": "ok", "label": "ham"}\n{"text": "no label"}\n',
      2,
      /has no field "label"/,
    ],
    [
      'a JSONL row with a null label',
      'bad.jsonl',
      '{"text": "ok", "label": null}\n',
      1,
      /field "label" is null/,
    ],
    [
      'a JSONL row with an empty label',
      'bad.jsonl',
      '{"text": "ok", "label": ""}\n',
      1,
      /field "label" is string, not non-empty/,
    ],
    [
      'a JSONL row whose text is a number',
      'bad.jsonl',
      '{"text": 5, "label": "ham"}\n',
      1,
      /field "text" is number, not string/,
    ],
    [
      'a JSONL row nested past the depth bound',
      'bad.jsonl',
      `{"text": "a", "label": "b", "x": ${'['.repeat(50)}${']'.repeat(50)}}\n`,
      1,
      /flat JSON object/,
    ],
    [
      'bytes that are not UTF-8',
      'bad.jsonl',
      '{"text": "ok", "label": "ham"}\n{"text": "\xff", "label": "ham"}\n',
      2,
      /not valid UTF-8/,
    ],
  ])('refuses %s with INVALID_DATA naming the file and line', async (_label, name, text, line, message) => {
    const directory = temporaryDirectory();
    const file = path.join(directory, name);
    // latin1 keeps \xff a single byte that is not UTF-8.
    writeFileSync(file, Buffer.from(text, text.includes('\xff') ? 'latin1' : 'utf8'));
    const error = await rejection(rows(file));
    expect(error.code).toBe('INVALID_DATA');
    expect(error.message).toContain(`${file} line ${line}: `);
    expect(error.message).toMatch(message);
    expect(error.details).toMatchObject({ file, line });
  });

  it('refuses a file that is not a regular file, or missing, with IO_FAILED naming it', async () => {
    const directory = temporaryDirectory();
    const missing = await rejection(rows(path.join(directory, 'absent.csv')));
    expect(missing.code).toBe('IO_FAILED');
    expect(missing.message).toContain('absent.csv');
    const folder = path.join(directory, 'folder.jsonl');
    (await import('node:fs')).mkdirSync(folder);
    const notFile = await rejection(rows(folder));
    expect(notFile.code).toBe('IO_FAILED');
    expect(notFile.message).toContain('is not a regular file');
  });

  it('refuses a single 100 MB line at the row limit, naming its line, without reading it whole (memory bounded)', async () => {
    const directory = temporaryDirectory();
    const file = path.join(directory, 'huge.jsonl');
    const chunk = 'x'.repeat(1024 * 1024);
    await writeLines(file, 101, (index) =>
      index === 0
        ? '{"text": "ok", "label": "ham"}\n{"text": "'
        : index === 100
          ? '", "label": "spam"}\n'
          : chunk,
    );
    const { growth, error } = await residentGrowth(() => rows(file));
    expect(FinepruneError.is(error)).toBe(true);
    expect((error as FinepruneError).code).toBe('INVALID_DATA');
    expect((error as FinepruneError).message).toContain(`${file} line 2: is longer than 1048576 bytes`);
    // Reading the line whole would take over 100 MB of buffers (and twice that as a string); the
    // reader stops after 1 MiB. 32 MiB leaves room for the test's own garbage.
    expect(growth).toBeLessThan(32 * 1024 * 1024);
  });

  it('streams a 100 MB file of short rows in bounded memory', async () => {
    const directory = temporaryDirectory();
    const file = path.join(directory, 'many.jsonl');
    const row = (index: number) =>
      `{"text": "${'word '.repeat(40)}${index}", "label": "${index % 2 ? 'spam' : 'ham'}"}\n`;
    const count = Math.ceil((100 * 1024 * 1024) / row(0).length);
    await writeLines(file, count, row);
    let seen = 0;
    let last: TextRow | undefined;
    const { growth, error } = await residentGrowth(async () => {
      for await (const read of readTextRows(file, textSource(file))) {
        seen++;
        last = read;
      }
    });
    expect(error).toBeUndefined();
    expect(seen).toBe(count);
    expect(last).toMatchObject({ label: (count - 1) % 2 ? 'spam' : 'ham', line: count });
    expect(growth).toBeLessThan(64 * 1024 * 1024);
  }, 120_000);

  it('splits lines at \\n and \\r\\n across 64 KiB read chunks', async () => {
    const directory = temporaryDirectory();
    const long = 'y'.repeat(64 * 1024 - 3);
    const file = write(directory, 'lines.txt', `${long}\r\nab\n\nlast`);
    const lines = [];
    for await (const line of readBoundedLines(file, { maxLineBytes: 1 << 20 })) lines.push(line);
    expect(lines.map((line) => [line.line, line.text.length])).toEqual([
      [1, long.length],
      [2, 2],
      [3, 0],
      [4, 4],
    ]);
  });
});

describe('loadTextData', () => {
  it('infers sorted labels, tokenizes with the vocabulary and holds out a seeded tenth', async () => {
    const directory = temporaryDirectory();
    const lines = Array.from({ length: 20 }, (_, index) =>
      JSON.stringify({
        text: index % 2 ? 'win money now' : 'see you at lunch',
        label: index % 2 ? 'spam' : 'ham',
      }),
    );
    write(directory, 'train.jsonl', `${lines.join('\n')}\n`);
    const data = await loadTextData(textSource('train.jsonl'), {
      baseDirectory: directory,
      tokenizer,
      maxLength: 8,
      seed: 3,
    });
    expect(data.labels).toEqual(['ham', 'spam']);
    expect(data.train.labels.length).toBe(18);
    expect(data.test.labels.length).toBe(2);
    // Each example is [CLS] (101) tokens [SEP] (102), padded with 0 to 8; mask 1 on the tokens.
    const spam = Array.from(tokenizer.encode('win money now').ids);
    expect(spam).toHaveLength(5);
    expect([spam[0], spam[4]]).toEqual([101, 102]);
    const row = Array.from(data.train.labels).indexOf(1);
    expect(Array.from(data.train.inputIds.subarray(row * 8, row * 8 + 8))).toEqual([...spam, 0, 0, 0]);
    expect(Array.from(data.train.attentionMask.subarray(row * 8, row * 8 + 8))).toEqual([
      1, 1, 1, 1, 1, 0, 0, 0,
    ]);
    // Labels as written: 10 spam (1) and 10 ham (0) rows between the two parts.
    const ones = [...data.train.labels, ...data.test.labels].filter((label) => label === 1);
    expect(ones).toHaveLength(10);
  });

  it('refuses an unknown label (declared labels, or a validation label the training file lacks), naming file and line', async () => {
    const directory = temporaryDirectory();
    write(directory, 'train.csv', 'text,label\na,ham\nb,spam\nc,eggs\n');
    const declared = await rejection(
      loadTextData(textSource('train.csv', { labels: ['ham', 'spam'] }), {
        baseDirectory: directory,
        tokenizer,
        maxLength: 8,
        seed: 0,
      }),
    );
    expect(declared.code).toBe('INVALID_DATA');
    expect(declared.message).toContain(`${path.join(directory, 'train.csv')} line 4: has the label "eggs"`);
    write(directory, 'ok.csv', 'text,label\na,ham\nb,spam\n');
    write(directory, 'dev.csv', 'text,label\na,ham\nb,bacon\n');
    const validation = await rejection(
      loadTextData(textSource('ok.csv', { validation: 'dev.csv' }), {
        baseDirectory: directory,
        tokenizer,
        maxLength: 8,
        seed: 0,
      }),
    );
    expect(validation.message).toContain(`${path.join(directory, 'dev.csv')} line 3: has the label "bacon"`);
  });

  it.each([
    ['an empty file', 'empty.jsonl', '', /holds no examples/],
    ['a CSV of only a header', 'header.csv', 'text,label\n', /holds no examples/],
    [
      'a file of one label',
      'one.jsonl',
      '{"text": "a", "label": "ham"}\n{"text": "b", "label": "ham"}\n',
      /only the label "ham"/,
    ],
    [
      'too few rows to hold out a validation example',
      'two.jsonl',
      '{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n',
      /leaves no validation example/,
    ],
  ])('refuses %s with INVALID_DATA naming the file', async (_label, name, text, message) => {
    const directory = temporaryDirectory();
    const file = write(directory, name, text);
    const error = await rejection(
      loadTextData(textSource(name), { baseDirectory: directory, tokenizer, maxLength: 8, seed: 0 }),
    );
    expect(error.code).toBe('INVALID_DATA');
    expect(error.message).toContain(file);
    expect(error.message).toMatch(message);
  });
});
