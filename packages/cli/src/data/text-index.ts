import type { RecipeTextData } from '@fineprune/recipes';
import type { LabelledText } from '@fineprune/text';
import { dataError } from './data-errors';
import { type FileStamp, fileStamp, readFileRanges } from './file-ranges';
import type { LabelIndex, TextExamples } from './text-data';
import { parseTextRow, readTextRows } from './text-rows';

/** Rows the index has room for before it first grows. */
const INITIAL_CAPACITY = 1024;

/**
 * Where each row of a text data file lies and its label, found by one streamed pass over the file
 * (every row parsed and checked then); the texts of a batch's rows are read again by their byte
 * offsets when they are needed. About 24 bytes a row, whatever the rows hold.
 *
 * @example
 * ```ts
 * const index = await indexTextFile('data/train.jsonl', recipe.data.text!, labels);
 * index.read(Int32Array.of(0, 5)); // the first and sixth rows, parsed again
 * ```
 */
export class TextFileIndex implements TextExamples {
  private starts = new Float64Array(INITIAL_CAPACITY);
  private ends = new Float64Array(INITIAL_CAPACITY);
  private lines = new Int32Array(INITIAL_CAPACITY);
  private labels = new Int32Array(INITIAL_CAPACITY);
  private size = 0;
  private stamp: FileStamp | undefined;
  /** The CSV header (CSV files). */
  header: string[] | undefined;

  constructor(
    readonly file: string,
    private readonly source: RecipeTextData,
  ) {}

  get count(): number {
    return this.size;
  }

  /** Records one row: its bytes, line and label. */
  add(row: { start: number; end: number; line: number }, label: number): void {
    if (this.size === this.labels.length) this.grow();
    this.starts[this.size] = row.start;
    this.ends[this.size] = row.end;
    this.lines[this.size] = row.line;
    this.labels[this.size] = label;
    this.size++;
  }

  /** Marks the pass finished: later reads check that the file is still as it was then. */
  seal(stamp: FileStamp): void {
    this.stamp = stamp;
  }

  label(index: number): number {
    return this.labels[index]!;
  }

  /** Renumbers every label: label `l` becomes `mapping[l]`. */
  renumber(mapping: readonly number[]): void {
    for (let row = 0; row < this.size; row++) this.labels[row] = mapping[this.labels[row]!]!;
  }

  /**
   * The rows at `indices`, read again from the file by their byte offsets and parsed as the pass
   * parsed them (at most `maxRowBytes` each).
   *
   * @throws FinepruneError `INVALID_DATA` naming the file when it changed since the pass;
   *   `IO_FAILED` when it can no longer be read
   */
  read(indices: Int32Array): LabelledText[] {
    const ranges = Array.from(indices, (index) => ({
      start: this.starts[index]!,
      end: this.ends[index]!,
      line: this.lines[index]!,
    }));
    const bytes = readFileRanges(this.file, ranges, this.stamp!);
    const decoder = new TextDecoder('utf-8', { fatal: true });
    return ranges.map((range, at) => {
      let text: string;
      try {
        text = decoder.decode(bytes[at]);
      } catch (error) {
        throw dataError(
          { file: this.file, line: range.line },
          'is no longer valid UTF-8 text.',
          'Do not change a data file while a run reads it.',
          {
            cause: error,
          },
        );
      }
      const row = parseTextRow(text, { file: this.file, ...range }, this.source, this.header);
      const label = this.labels[indices[at]!]!;
      return row.pair === undefined ? { text: row.text, label } : { text: row.text, pair: row.pair, label };
    });
  }

  private grow(): void {
    const capacity = this.labels.length * 2;
    const larger = <T extends Float64Array | Int32Array>(array: T, make: (size: number) => T): T => {
      const next = make(capacity);
      next.set(array);
      return next;
    };
    this.starts = larger(this.starts, (size) => new Float64Array(size));
    this.ends = larger(this.ends, (size) => new Float64Array(size));
    this.lines = larger(this.lines, (size) => new Int32Array(size));
    this.labels = larger(this.labels, (size) => new Int32Array(size));
  }
}

/**
 * Reads a CSV or JSONL file through once, streamed (one row in memory at a time), checking every
 * row and label, and keeps where each row is ({@link TextFileIndex}).
 *
 * @param file - the path (as messages show it)
 * @param source - the recipe's `data.text`
 * @param labels - the label index: declared labels (an unknown one is an error) or growing
 * @throws FinepruneError `INVALID_DATA` naming the file and line for malformed rows and unknown
 *   labels, the file when it holds no rows or changed while it was read; `IO_FAILED` when it cannot
 *   be read
 *
 * @example
 * ```ts
 * const index = await indexTextFile(path.resolve('train.csv'), recipe.data.text!, new LabelIndex(['ham', 'spam'], false));
 * ```
 */
export async function indexTextFile(
  file: string,
  source: RecipeTextData,
  labels: LabelIndex,
): Promise<TextFileIndex> {
  const index = new TextFileIndex(file, source);
  const before = fileStamp(file);
  const rows = readTextRows(file, source, {
    onHeader: (header) => {
      index.header = header;
    },
  });
  for await (const row of rows) index.add(row, labels.of(row.label, { file, line: row.line }));
  if (index.count === 0)
    throw dataError(
      { file },
      'holds no examples.',
      'Give at least one labelled row (CSV: after the header row).',
    );
  const after = fileStamp(file);
  if (after.size !== before.size || after.mtimeMs !== before.mtimeMs)
    throw dataError(
      { file },
      'changed while it was read.',
      'Do not change a data file while a run reads it; run again.',
    );
  index.seal(after);
  return index;
}
