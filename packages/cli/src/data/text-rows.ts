import path from 'node:path';
import { ErrorCodes } from '@fineprune/core';
import type { RecipeTextData } from '@fineprune/recipes';
import { checkJsonBounds, quoteText } from '@fineprune/tensor/untrusted';
import { readBoundedLines } from './bounded-lines';
import { csvRecords } from './csv-records';
import { dataError } from './data-errors';

/**
 * One labelled text row of a data file.
 *
 * @example
 * ```ts
 * const row: TextRow = { text: 'Win a prize!', label: 'spam', line: 7 };
 * ```
 */
export interface TextRow {
  text: string;
  /** The second text of a sentence pair, with `pairColumn`. */
  pair?: string;
  /** The label as written (a JSON number becomes its decimal text). */
  label: string;
  line: number;
}

/** The columns a text data source reads. */
type Columns = Pick<RecipeTextData, 'textColumn' | 'pairColumn' | 'labelColumn'>;

/**
 * The format of a data file: as declared, else from its extension (`.csv`, `.tsv`, `.jsonl`, `.ndjson`).
 *
 * @throws FinepruneError `INVALID_RECIPE` for an extension that names no known format
 *
 * @example
 * ```ts
 * textFileFormat('data/train.jsonl', undefined); // 'jsonl'
 * ```
 */
export function textFileFormat(file: string, declared: RecipeTextData['format']): 'csv' | 'jsonl' {
  if (declared) return declared;
  const extension = path.extname(file).toLowerCase();
  if (extension === '.csv' || extension === '.tsv') return 'csv';
  if (extension === '.jsonl' || extension === '.ndjson') return 'jsonl';
  throw dataError(
    { file },
    `has the extension ${JSON.stringify(extension)}, which names neither CSV nor JSONL.`,
    'Name the file .csv or .jsonl, or set data.text.format.',
    { code: ErrorCodes.INVALID_RECIPE },
  );
}

/** The string value of a field, or undefined when it is missing. */
function fieldText(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** A JSON label: a string, or a finite number written as its decimal text. */
function labelText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

async function* jsonlRows(file: string, source: RecipeTextData): AsyncGenerator<TextRow> {
  for await (const { text, line } of readBoundedLines(file, { maxLineBytes: source.maxRowBytes })) {
    if (text.trim() === '') continue;
    const excess = checkJsonBounds(text, { maxDepth: 8, maxValues: 10_000 });
    if (excess)
      throw dataError(
        { file, line },
        `${excess.description}; a row is one flat JSON object.`,
        'Write one object per line, such as {"text": "…", "label": "spam"}.',
      );
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw dataError(
        { file, line },
        `is not valid JSON: ${(error as Error).message.slice(0, 200)}`,
        'Write one JSON object per line (JSON Lines).',
        { cause: error },
      );
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      throw dataError(
        { file, line },
        'is not a JSON object.',
        'Write one object per line, such as {"text": "…", "label": "spam"}.',
      );
    yield rowFromValues(value as Record<string, unknown>, source, { file, line }, Object.keys(value));
  }
}

function rowFromValues(
  values: Record<string, unknown>,
  columns: Columns,
  place: { file: string; line: number },
  available: readonly string[],
): TextRow {
  const missing = (column: string, what: string) =>
    dataError(
      place,
      Object.hasOwn(values, column)
        ? `field ${quoteText(column)} is ${values[column] === null ? 'null' : typeof values[column]}, not ${what}.`
        : `has no field ${quoteText(column)} (it has ${
            available
              .slice(0, 10)
              .map((name) => quoteText(name))
              .join(', ') || 'none'
          }).`,
      `Give every row a ${what} ${quoteText(column)}, or set data.text.${column === columns.labelColumn ? 'labelColumn' : 'textColumn'} to the right name.`,
    );
  const text = fieldText(values[columns.textColumn]);
  if (text === undefined) throw missing(columns.textColumn, 'string');
  const label = labelText(values[columns.labelColumn]);
  if (label === undefined || label === '') throw missing(columns.labelColumn, 'non-empty string or number');
  if (columns.pairColumn === undefined) return { text, label, line: place.line };
  const pair = fieldText(values[columns.pairColumn]);
  if (pair === undefined) throw missing(columns.pairColumn, 'string');
  return { text, pair, label, line: place.line };
}

async function* csvRows(file: string, source: RecipeTextData): AsyncGenerator<TextRow> {
  const lines = readBoundedLines(file, { maxLineBytes: source.maxRowBytes });
  let header: string[] | undefined;
  for await (const record of csvRecords(lines, {
    file,
    delimiter: source.delimiter,
    maxRecordBytes: source.maxRowBytes,
  })) {
    if (header === undefined) {
      header = record.fields;
      const wanted = [
        source.textColumn,
        source.labelColumn,
        ...(source.pairColumn ? [source.pairColumn] : []),
      ];
      const absent = wanted.filter((column) => !header!.includes(column));
      if (absent.length > 0)
        throw dataError(
          { file, line: record.line },
          `the header names no column ${absent.map((column) => quoteText(column)).join(', ')} (it has ${header
            .slice(0, 10)
            .map((name) => quoteText(name))
            .join(', ')}).`,
          'Start the file with a header row naming the columns, or set data.text.textColumn / labelColumn.',
        );
      continue;
    }
    if (record.fields.length !== header.length)
      throw dataError(
        { file, line: record.line },
        `has ${record.fields.length} fields, the header ${header.length}.`,
        'Give every row one field per header column (quote fields that hold the delimiter).',
      );
    const values = Object.fromEntries(header.map((name, index) => [name, record.fields[index]]));
    yield rowFromValues(values, source, { file, line: record.line }, header);
  }
}

/**
 * Reads the labelled rows of a CSV (header row first) or JSONL file, streamed: one row in memory at
 * a time, each at most `maxRowBytes`.
 *
 * @param file - the path (as messages show it)
 * @param source - the recipe's `data.text` (columns, format, delimiter, row limit)
 * @returns the rows in file order
 * @throws FinepruneError `INVALID_DATA` naming the file and line for malformed rows (bad JSON, a
 *   stray quote, a wrong number of fields, a missing text or label), `IO_FAILED` when the file
 *   cannot be read
 *
 * @example
 * ```ts
 * for await (const row of readTextRows('data/train.csv', recipe.data.text!)) console.log(row.label);
 * ```
 */
export function readTextRows(file: string, source: RecipeTextData): AsyncGenerator<TextRow> {
  return textFileFormat(file, source.format) === 'csv' ? csvRows(file, source) : jsonlRows(file, source);
}
