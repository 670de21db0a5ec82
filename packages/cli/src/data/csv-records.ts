import { type FileLine, readBoundedLines } from './bounded-lines';
import { dataError } from './data-errors';

/**
 * One CSV record: its fields and the line it starts on.
 *
 * @example
 * ```ts
 * const record: CsvRecord = { fields: ['hello', 'ham'], line: 2 };
 * ```
 */
export interface CsvRecord {
  fields: string[];
  line: number;
}

/**
 * The state of one record being read (RFC 4180: fields separated by the delimiter, optionally in
 * double quotes, `""` a quote inside quotes, line breaks allowed inside quotes).
 */
class RecordState {
  fields: string[] = [];
  private field = '';
  private quoted = false;
  /** Inside quotes: the record continues on the next line when the line ends here. */
  inQuotes = false;
  /** Just after the closing quote of a field: only a delimiter or the end may follow. */
  private closed = false;
  private atFieldStart = true;
  length = 0;

  constructor(private readonly delimiter: string) {}

  /** Reads one line; returns an error message, or undefined. */
  feed(text: string): string | undefined {
    this.length += text.length + 1;
    if (this.inQuotes) this.field += '\n';
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      if (this.inQuotes) {
        if (c !== '"') {
          this.field += c;
        } else if (text[i + 1] === '"') {
          this.field += '"';
          i++;
        } else {
          this.inQuotes = false;
          this.closed = true;
        }
        continue;
      }
      if (c === this.delimiter) {
        this.endField();
        continue;
      }
      if (this.closed)
        return `has ${JSON.stringify(c)} after the closing quote of field ${this.fields.length + 1}`;
      if (c === '"') {
        if (!this.atFieldStart) return `has a quote inside the unquoted field ${this.fields.length + 1}`;
        this.inQuotes = true;
        this.quoted = true;
        this.atFieldStart = false;
        continue;
      }
      this.field += c;
      this.atFieldStart = false;
    }
    if (!this.inQuotes) this.endField();
    return undefined;
  }

  private endField(): void {
    this.fields.push(this.field);
    this.field = '';
    this.quoted = false;
    this.closed = false;
    this.atFieldStart = true;
  }

  /** True when the record holds one empty unquoted field (a blank line). */
  get blank(): boolean {
    return this.fields.length === 1 && this.fields[0] === '' && !this.quoted;
  }
}

/**
 * Reads CSV records from lines (RFC 4180), each bounded to `maxRecordBytes` characters however many
 * lines its quoted fields span.
 *
 * @param lines - the lines of the file ({@link readBoundedLines})
 * @param options - the file (for messages), the delimiter and the longest record
 * @returns the records with the line each starts on; blank lines are skipped
 * @throws FinepruneError `INVALID_DATA` naming the file and line for a stray quote, text after a
 *   closing quote, a quote left open at the end of the file, or a record over the limit
 *
 * @example
 * ```ts
 * for await (const record of csvRecords(readBoundedLines(file, { maxLineBytes }), { file, delimiter: ',', maxRecordBytes })) {
 *   console.log(record.line, record.fields);
 * }
 * ```
 */
export async function* csvRecords(
  lines: AsyncIterable<FileLine>,
  options: { file: string; delimiter: string; maxRecordBytes: number },
): AsyncGenerator<CsvRecord> {
  const { file, delimiter, maxRecordBytes } = options;
  let state: RecordState | undefined;
  let start = 0;
  for await (const { text, line } of lines) {
    if (state === undefined) {
      state = new RecordState(delimiter);
      start = line;
    }
    const problem = state.feed(text);
    if (problem !== undefined)
      throw dataError(
        { file, line },
        `${problem}.`,
        'Quote fields that hold the delimiter or quotes ("a ""quoted"" word"), as RFC 4180 CSV does.',
      );
    if (state.length > maxRecordBytes) {
      throw dataError(
        { file, line: start },
        `holds a record longer than ${maxRecordBytes} characters (maxRowBytes)${line > start ? `, up to line ${line}` : ''}.`,
        'Close the quote that opens the record, shorten it, or raise data.text.maxRowBytes.',
      );
    }
    if (state.inQuotes) continue;
    if (!state.blank) yield { fields: state.fields, line: start };
    state = undefined;
  }
  if (state?.inQuotes) {
    throw dataError(
      { file, line: start },
      'opens a quoted field that is never closed.',
      'Close the quote (a quote inside a quoted field is written "").',
    );
  }
}
