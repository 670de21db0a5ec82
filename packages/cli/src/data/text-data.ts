import path from 'node:path';
import { PermutationDomain, seededPermutation } from '@fineprune/datasets';
import type { RecipeTextData } from '@fineprune/recipes';
import { quoteText } from '@fineprune/tensor/untrusted';
import {
  type BertTokenizer,
  type EncodedExamples,
  EncodedExamplesBuilder,
  encodeTruncated,
} from '@fineprune/text';
import { dataError } from './data-errors';
import { readTextRows } from './text-rows';

/**
 * Labelled texts, encoded: the label names (model output `i` is label `i`), the training and the
 * evaluation examples.
 *
 * @example
 * ```ts
 * const data: EncodedTextData = await loadTextData(recipe.data.text!, { baseDirectory, tokenizer, maxLength: 128, seed: 0 });
 * data.labels; // ['ham', 'spam']
 * ```
 */
export interface EncodedTextData {
  labels: string[];
  train: EncodedExamples;
  test: EncodedExamples;
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

/** The label index of each label name, growing (inferred) or fixed (declared). */
class LabelIndex {
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

async function encodeFile(
  file: string,
  source: RecipeTextData,
  options: { tokenizer: BertTokenizer; maxLength: number; labels: LabelIndex },
): Promise<EncodedExamplesBuilder> {
  const builder = new EncodedExamplesBuilder(options.maxLength);
  for await (const row of readTextRows(file, source)) {
    const label = options.labels.of(row.label, { file, line: row.line });
    const encoded = encodeTruncated(options.tokenizer, row.text, {
      maxLength: options.maxLength,
      ...(row.pair !== undefined ? { pair: row.pair } : {}),
    });
    builder.add(encoded, label);
  }
  if (builder.size === 0)
    throw dataError(
      { file },
      'holds no examples.',
      'Give at least one labelled row (CSV: after the header row).',
    );
  return builder;
}

/** The examples at `indices` (sorted), copied. */
function gather(encoded: EncodedExamples, indices: Int32Array): EncodedExamples {
  const length = encoded.maxLength;
  const take = (array: Int32Array) => {
    const out = new Int32Array(indices.length * length);
    indices.forEach((row, at) => {
      out.set(array.subarray(row * length, (row + 1) * length), at * length);
    });
    return out;
  };
  return {
    maxLength: length,
    inputIds: take(encoded.inputIds),
    tokenTypeIds: take(encoded.tokenTypeIds),
    attentionMask: take(encoded.attentionMask),
    labels: Int32Array.from(indices, (row) => encoded.labels[row]!),
  };
}

/**
 * Holds out a seeded share of encoded examples, as `splitValidation` of `@fineprune/datasets` holds
 * out images: the last `round(fraction · n)` of a seeded permutation, each part in file order.
 *
 * @throws FinepruneError `INVALID_DATA` when either part would be empty
 *
 * @example
 * ```ts
 * const { train, validation } = holdOut(encoded, 0.1, 0, 'data/train.jsonl');
 * ```
 */
export function holdOut(
  encoded: EncodedExamples,
  fraction: number,
  seed: number,
  file: string,
): { train: EncodedExamples; validation: EncodedExamples } {
  const count = encoded.labels.length;
  const held = Math.round(fraction * count);
  if (held < 1 || held >= count) {
    throw dataError(
      { file },
      `holds ${count} examples: holding out ${fraction} of them leaves ${held < 1 ? 'no validation example' : 'no training example'}.`,
      'Give more examples, another data.text.validationFraction, or a data.text.validation file.',
    );
  }
  const order = seededPermutation(count, seed, 0, PermutationDomain.validation);
  return {
    train: gather(encoded, order.slice(0, count - held).sort()),
    validation: gather(encoded, order.slice(count - held).sort()),
  };
}

/**
 * Reads, labels and encodes a recipe's text data: the training file (CSV or JSONL, streamed row by
 * row), and the validation file or a seeded hold-out of the training rows. Labels are the declared
 * ones (an unknown label is an error naming file and line) or those of the training file, sorted;
 * the validation file may use only those.
 *
 * @param source - the recipe's `data.text`
 * @param options - the recipe's directory, the tokenizer and length, the seed of the hold-out
 * @throws FinepruneError `INVALID_DATA` (file and line) for malformed rows, unknown labels and empty
 *   files; `IO_FAILED` for unreadable files
 *
 * @example
 * ```ts
 * const data = await loadTextData(recipe.data.text!, { baseDirectory: '.', tokenizer: createBertTokenizer(), maxLength: 128, seed: 0 });
 * ```
 */
export async function loadTextData(
  source: RecipeTextData,
  options: { baseDirectory: string; tokenizer: BertTokenizer; maxLength: number; seed: number },
): Promise<EncodedTextData> {
  const resolve = (file: string) => path.resolve(options.baseDirectory, file);
  const labels = new LabelIndex(source.labels, source.labels === undefined);
  const common = { tokenizer: options.tokenizer, maxLength: options.maxLength, labels };
  const trainFile = resolve(source.train);
  const trainBuilder = await encodeFile(trainFile, source, common);
  if (source.labels === undefined) {
    // Inferred labels: number them in sorted order, whatever order the file met them in.
    const sorted = sortLabels([...labels.names]);
    const renumber = labels.names.map((name) => sorted.indexOf(name));
    for (let row = 0; row < trainBuilder.size; row++)
      trainBuilder.relabel(row, renumber[trainBuilder.label(row)]!);
    labels.names.splice(0, labels.names.length, ...sorted);
  }
  if (labels.names.length < 2)
    throw dataError(
      { file: trainFile },
      `has only the label ${quoteText(labels.names[0])}; classification needs at least two.`,
      'Check data.text.labelColumn, or give examples of every class.',
    );
  const fixed = new LabelIndex(labels.names, false);
  const train = trainBuilder.build();
  if (source.validation !== undefined) {
    const validation = await encodeFile(resolve(source.validation), source, {
      ...common,
      labels: fixed,
    });
    return { labels: labels.names, train, test: validation.build() };
  }
  const split = holdOut(
    train,
    source.validationFraction ?? DEFAULT_VALIDATION_FRACTION,
    options.seed,
    trainFile,
  );
  return { labels: labels.names, train: split.train, test: split.validation };
}
