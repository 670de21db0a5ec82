import path from 'node:path';
import { PermutationDomain, seededPermutation } from '@fineprune/datasets';
import type { RecipeTextData } from '@fineprune/recipes';
import { quoteText } from '@fineprune/tensor/untrusted';
import type { LabelledText } from '@fineprune/text';
import { dataError } from './data-errors';
import { indexTextFile } from './text-index';

/**
 * Labelled texts that are read when they are needed: how many there are, the label of each, and
 * the texts of a few of them (one batch) at a time. A text file keeps only where each row is.
 *
 * @example
 * ```ts
 * const batch = examples.read(Int32Array.of(4, 0, 7)); // [{ text, label }, …]
 * ```
 */
export interface TextExamples {
  readonly count: number;
  /** The label index of example `index`. */
  label(index: number): number;
  /** The examples at `indices` (each below `count`), in that order. */
  read(indices: Int32Array): LabelledText[];
}

/**
 * A recipe's text data: the label names (model output `i` is label `i`), the training and the
 * evaluation examples, read lazily.
 *
 * @example
 * ```ts
 * const data: TextData = await loadTextData(recipe.data.text!, { baseDirectory, seed: 0 });
 * data.labels; // ['ham', 'spam']
 * ```
 */
export interface TextData {
  labels: string[];
  train: TextExamples;
  test: TextExamples;
}

/** The most distinct labels inferred from a file. */
export const MAX_INFERRED_LABELS = 1000;

/** Default share of the training rows held out when no validation file is given. */
export const DEFAULT_VALIDATION_FRACTION = 0.1;

/** Sorts label names: numerically when every name is a number, else by code point. */
function sortLabels(names: string[]): string[] {
  const numeric = names.every((name) => name.trim() !== '' && Number.isFinite(Number(name)));
  return numeric ? names.sort((a, b) => Number(a) - Number(b)) : names.sort();
}

/**
 * The label index of each label name, growing (inferred) or fixed (declared).
 *
 * @example
 * ```ts
 * const labels = new LabelIndex(undefined, true);
 * labels.of('spam', { file: 'train.csv', line: 2 }); // 0
 * ```
 */
export class LabelIndex {
  readonly names: string[];
  private readonly index: Map<string, number>;

  constructor(
    declared: readonly string[] | undefined,
    private readonly growing: boolean,
  ) {
    this.names = [...(declared ?? [])];
    this.index = new Map(this.names.map((name, at) => [name, at]));
  }

  of(label: string, place: { file: string; line: number }): number {
    const known = this.index.get(label);
    if (known !== undefined) return known;
    if (!this.growing) {
      throw dataError(
        place,
        `has the label ${quoteText(label)}, which is not among the labels ${this.names
          .slice(0, 20)
          .map((name) => quoteText(name))
          .join(', ')}${this.names.length > 20 ? ', …' : ''}.`,
        'Correct the label, or add it to data.text.labels (the validation data may only use labels of the training data).',
      );
    }
    if (this.names.length >= MAX_INFERRED_LABELS) {
      throw dataError(
        place,
        `brings the number of distinct labels past ${MAX_INFERRED_LABELS} (the label column may hold free text).`,
        'Check data.text.labelColumn, or declare the labels with data.text.labels.',
      );
    }
    this.index.set(label, this.names.length);
    this.names.push(label);
    return this.names.length - 1;
  }
}

/**
 * The examples at `indices` of `examples` (a view: only the indices are kept).
 *
 * @example
 * ```ts
 * const firstTwo = pickExamples(examples, Int32Array.of(0, 1));
 * ```
 */
export function pickExamples(examples: TextExamples, indices: Int32Array): TextExamples {
  return {
    count: indices.length,
    label: (index) => examples.label(indices[index]!),
    read: (wanted) => examples.read(wanted.map((index) => indices[index]!)),
  };
}

/**
 * Examples held in memory (the built-in tasks' texts), served like a file's.
 *
 * @example
 * ```ts
 * const examples = examplesInMemory(spamTask({ seed: 0 }).train);
 * ```
 */
export function examplesInMemory(examples: readonly LabelledText[]): TextExamples {
  return {
    count: examples.length,
    label: (index) => examples[index]!.label,
    read: (indices) => Array.from(indices, (index) => examples[index]!),
  };
}

/**
 * Holds out a seeded share of `count` examples, as `splitValidation` of `@fineprune/datasets` holds
 * out images: the last `round(fraction · count)` of a seeded permutation, each part in file order.
 *
 * @returns the example indices of each part, sorted
 * @throws FinepruneError `INVALID_DATA` naming `file` when either part would be empty
 *
 * @example
 * ```ts
 * const { train, validation } = holdOut(1000, 0.1, 0, 'data/train.jsonl', 'data.text');
 * ```
 */
export function holdOut(
  count: number,
  fraction: number,
  seed: number,
  file: string,
  where: 'data.text' | 'data.images' = 'data.text',
): { train: Int32Array; validation: Int32Array } {
  const held = Math.round(fraction * count);
  if (held < 1 || held >= count) {
    const what = where === 'data.text' ? 'examples' : 'images';
    throw dataError(
      { file },
      `holds ${count} ${what}: holding out ${fraction} of them leaves ${held < 1 ? 'no validation example' : 'no training example'}.`,
      `Give more ${what}, another ${where}.validationFraction, or a ${where}.validation ${where === 'data.text' ? 'file' : 'folder'}.`,
    );
  }
  const order = seededPermutation(count, seed, 0, PermutationDomain.validation);
  return { train: order.slice(0, count - held).sort(), validation: order.slice(count - held).sort() };
}

/**
 * Reads through and labels a recipe's text data without keeping the texts: the training file (CSV
 * or JSONL, streamed row by row, every row checked) and the validation file or a seeded hold-out of
 * the training rows. What is kept is where each row lies in its file and its label (about 24 bytes
 * a row); a batch's rows are read again, parsed and tokenized when the batch is made. Labels are
 * the declared ones (an unknown label is an error naming file and line) or those of the training
 * file, sorted; the validation file may use only those.
 *
 * @param source - the recipe's `data.text`
 * @param options - the recipe's directory and the seed of the hold-out
 * @throws FinepruneError `INVALID_DATA` (file and line) for malformed rows, unknown labels and empty
 *   files; `IO_FAILED` for unreadable files
 *
 * @example
 * ```ts
 * const data = await loadTextData(recipe.data.text!, { baseDirectory: '.', seed: 0 });
 * data.train.read(Int32Array.of(0)); // [{ text: '…', label: 1 }]
 * ```
 */
export async function loadTextData(
  source: RecipeTextData,
  options: { baseDirectory: string; seed: number },
): Promise<TextData> {
  const resolve = (file: string) => path.resolve(options.baseDirectory, file);
  const labels = new LabelIndex(source.labels, source.labels === undefined);
  const trainFile = resolve(source.train);
  const train = await indexTextFile(trainFile, source, labels);
  if (source.labels === undefined) {
    // Inferred labels: number them in sorted order, whatever order the file met them in.
    const sorted = sortLabels([...labels.names]);
    train.renumber(labels.names.map((name) => sorted.indexOf(name)));
    labels.names.splice(0, labels.names.length, ...sorted);
  }
  if (labels.names.length < 2)
    throw dataError(
      { file: trainFile },
      `has only the label ${quoteText(labels.names[0])}; classification needs at least two.`,
      'Check data.text.labelColumn, or give examples of every class.',
    );
  if (source.validation !== undefined) {
    const validation = await indexTextFile(
      resolve(source.validation),
      source,
      new LabelIndex(labels.names, false),
    );
    return { labels: labels.names, train, test: validation };
  }
  const split = holdOut(
    train.count,
    source.validationFraction ?? DEFAULT_VALIDATION_FRACTION,
    options.seed,
    trainFile,
  );
  return {
    labels: labels.names,
    train: pickExamples(train, split.train),
    test: pickExamples(train, split.validation),
  };
}
