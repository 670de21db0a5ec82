/**
 * The data of the encoder benchmarks — the masked-LM pretraining corpus and the two downstream
 * tasks (Brown genres, SpamAssassin) — tokenized once. Built from `@fineprune/corpora` (the corpora
 * packages) and `@fineprune/text` (the WordPiece tokenizer), or read back from a cache file that this script writes,
 * so that a machine without the corpora (or without pnpm: a bundled script on a GPU machine) runs
 * the same benchmarks on the same token ids.
 *
 * The cache is a safetensors file of int32 arrays; the scalars, split statistics and label names
 * are JSON in its `__metadata__`.
 *
 *   cd bench && npx tsx --conditions=source src/encoder-data.ts --output .cache/encoder-data.safetensors
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { brownGenreTask, loadBrown, loadMobyDick, loadSotu, spamTask } from '@fineprune/corpora';
import {
  decodeInt32,
  encodeSafetensors,
  readSafetensors,
  type SafetensorsInput,
} from '@fineprune/safetensors';
import {
  createBertTokenizer,
  type EncodedExamples,
  encodeExamples,
  type MlmCorpus,
  mlmCorpus,
  type TextExample,
} from '@fineprune/text';
import { BROWN_SPLIT_SEED, SMALL_ENCODER, SPAM_SPLIT_SEED } from './encoder-fixtures';

export type EncoderTaskName = 'brown-genre' | 'spam-assassin';

/** A downstream task, encoded: `train` and `dev` as arrays that `batchesFromEncoded` serves. */
export interface EncodedTask {
  readonly name: EncoderTaskName;
  readonly labels: readonly string[];
  readonly train: EncodedExamples;
  readonly dev: EncodedExamples;
}

/** The pretraining corpus and what it was made of. */
export interface PretrainingCorpus {
  readonly corpus: MlmCorpus;
  /** The seed of the held-out share. */
  readonly seed: number;
  readonly documents: number;
  readonly brownTrainingTexts: number;
  readonly brownDevTextsLeftOut: number;
}

function encodeSplit(examples: readonly TextExample[], classes: number, sequence: number): EncodedExamples {
  return encodeExamples(createBertTokenizer(), examples, {
    maxLength: sequence,
    batchSize: 1,
    shuffle: false,
    classes,
  }).encoded();
}

/** Builds a task from the corpora packages (Brown chunks of `sequence` wordpieces; spam by message). */
export function buildTask(name: EncoderTaskName, sequence: number = SMALL_ENCODER.maxPositions): EncodedTask {
  const task =
    name === 'spam-assassin'
      ? spamTask({ seed: SPAM_SPLIT_SEED })
      : brownGenreTask(createBertTokenizer(), { seed: BROWN_SPLIT_SEED, chunkTokens: sequence });
  const classes = task.labels.length;
  return {
    name,
    labels: task.labels,
    train: encodeSplit(task.train, classes, sequence),
    dev: encodeSplit(task.dev, classes, sequence),
  };
}

/**
 * State of the Union + Moby Dick + the Brown texts of the training split (the Brown dev texts are
 * left out, so the downstream dev set is never seen, even unlabelled), as masked-LM sequences.
 */
export function buildPretrainingCorpus(seed: number): PretrainingCorpus {
  const tokenizer = createBertTokenizer();
  const devDocuments = new Set(brownGenreTask(tokenizer, { seed: BROWN_SPLIT_SEED }).stats.devDocuments);
  const brown = loadBrown().filter((document) => !devDocuments.has(document.id));
  const documents = [...loadSotu(), ...loadMobyDick(), ...brown];
  return {
    corpus: mlmCorpus(tokenizer, documents, { sequenceLength: SMALL_ENCODER.maxPositions, seed }),
    seed,
    documents: documents.length,
    brownTrainingTexts: brown.length,
    brownDevTextsLeftOut: devDocuments.size,
  };
}

/**
 * Every `ceil(n / limit)`-th example (the first included), so about `limit` of them spread over
 * the split; `limit` ≤ 0 keeps all.
 */
export function everyNth(encoded: EncodedExamples, limit: number): EncodedExamples {
  const n = encoded.labels.length;
  if (limit <= 0 || limit >= n) return encoded;
  const stride = Math.ceil(n / limit);
  const rows = Array.from({ length: Math.ceil(n / stride) }, (_, i) => i * stride);
  const L = encoded.maxLength;
  const take = (array: Int32Array) => {
    const out = new Int32Array(rows.length * L);
    for (const [i, row] of rows.entries()) out.set(array.subarray(row * L, (row + 1) * L), i * L);
    return out;
  };
  return {
    maxLength: L,
    inputIds: take(encoded.inputIds),
    tokenTypeIds: take(encoded.tokenTypeIds),
    attentionMask: take(encoded.attentionMask),
    labels: Int32Array.from(rows, (row) => encoded.labels[row]!),
  };
}

const VERSION = '1';

/** Writes the corpus and tasks to one safetensors file (atomically). */
export function saveEncoderData(
  file: string,
  pretraining: PretrainingCorpus,
  tasks: readonly EncodedTask[],
): void {
  const tensors: Record<string, SafetensorsInput> = {};
  const int32 = (name: string, data: Int32Array | Uint8Array) => {
    tensors[name] = { dtype: 'I32', shape: [data.length], data };
  };
  const { corpus } = pretraining;
  for (const split of ['train', 'validation'] as const) {
    int32(`corpus/${split}/ids`, corpus[split].ids);
    int32(`corpus/${split}/lengths`, corpus[split].lengths);
  }
  int32('corpus/validationIndices', corpus.validationIndices);
  int32('corpus/reserved', corpus.reserved);
  int32('corpus/replacementIds', corpus.replacementIds);
  const taskInfo: Record<string, unknown> = {};
  for (const task of tasks) {
    for (const split of ['train', 'dev'] as const) {
      const encoded = task[split];
      int32(`${task.name}/${split}/inputIds`, encoded.inputIds);
      int32(`${task.name}/${split}/tokenTypeIds`, encoded.tokenTypeIds);
      int32(`${task.name}/${split}/attentionMask`, encoded.attentionMask);
      int32(`${task.name}/${split}/labels`, encoded.labels);
    }
    taskInfo[task.name] = {
      labels: task.labels,
      maxLength: task.train.maxLength,
      truncated: { train: task.train.truncated ?? 0, dev: task.dev.truncated ?? 0 },
    };
  }
  const metadata = {
    version: VERSION,
    corpus: JSON.stringify({
      sequenceLength: corpus.sequenceLength,
      wordpieces: corpus.wordpieces,
      documents: corpus.documents,
      counts: { train: corpus.train.count, validation: corpus.validation.count },
      specialIds: corpus.specialIds,
      vocabSize: corpus.vocabSize,
      sources: {
        seed: pretraining.seed,
        documents: pretraining.documents,
        brownTrainingTexts: pretraining.brownTrainingTexts,
        brownDevTextsLeftOut: pretraining.brownDevTextsLeftOut,
      },
    }),
    tasks: JSON.stringify(taskInfo),
  };
  const bytes = encodeSafetensors(tensors, metadata);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(`${file}.tmp`, bytes);
  renameSync(`${file}.tmp`, file);
}

/** What {@link readEncoderData} returns: the corpus and the tasks found in the file. */
export interface EncoderData {
  readonly pretraining: PretrainingCorpus;
  readonly tasks: ReadonlyMap<EncoderTaskName, EncodedTask>;
}

/** Reads a file written by {@link saveEncoderData}. */
export function readEncoderData(file: string): EncoderData {
  const parsed = readSafetensors(readFileSync(file));
  if (parsed.metadata.version !== VERSION) {
    throw new Error(
      `${file}: encoder data version ${parsed.metadata.version}, expected ${VERSION}; regenerate it.`,
    );
  }
  const get = (name: string) => {
    const tensor = parsed.tensors.get(name);
    if (!tensor) throw new Error(`${file}: no tensor ${name}; regenerate it.`);
    return decodeInt32(tensor);
  };
  const info = JSON.parse(parsed.metadata.corpus!);
  const split = (name: 'train' | 'validation') => ({
    count: info.counts[name] as number,
    ids: get(`corpus/${name}/ids`),
    lengths: get(`corpus/${name}/lengths`),
  });
  const corpus: MlmCorpus = {
    sequenceLength: info.sequenceLength,
    wordpieces: info.wordpieces,
    documents: info.documents,
    train: split('train'),
    validation: split('validation'),
    validationIndices: get('corpus/validationIndices'),
    specialIds: info.specialIds,
    vocabSize: info.vocabSize,
    reserved: Uint8Array.from(get('corpus/reserved')),
    replacementIds: get('corpus/replacementIds'),
  };
  const tasks = new Map<EncoderTaskName, EncodedTask>();
  for (const [name, task] of Object.entries(JSON.parse(parsed.metadata.tasks!)) as Array<
    [EncoderTaskName, { labels: string[]; maxLength: number; truncated: { train: number; dev: number } }]
  >) {
    const encoded = (which: 'train' | 'dev'): EncodedExamples => ({
      maxLength: task.maxLength,
      inputIds: get(`${name}/${which}/inputIds`),
      tokenTypeIds: get(`${name}/${which}/tokenTypeIds`),
      attentionMask: get(`${name}/${which}/attentionMask`),
      labels: get(`${name}/${which}/labels`),
      truncated: task.truncated[which],
    });
    tasks.set(name, { name, labels: task.labels, train: encoded('train'), dev: encoded('dev') });
  }
  return { pretraining: { corpus, ...info.sources }, tasks };
}

/** The task from `--data` when given, else built from the corpora packages. */
export function loadTask(name: EncoderTaskName, dataFile?: string, sequence?: number): EncodedTask {
  if (dataFile) {
    const task = readEncoderData(dataFile).tasks.get(name);
    if (!task) throw new Error(`${dataFile} holds no task ${name}.`);
    if (sequence !== undefined && task.train.maxLength !== sequence) {
      throw new Error(`${dataFile} encodes ${name} at length ${task.train.maxLength}, not ${sequence}.`);
    }
    return task;
  }
  return buildTask(name, sequence);
}

/** The pretraining corpus from `--data` when given, else built from the corpora packages. */
export function loadPretrainingCorpus(seed: number, dataFile?: string): PretrainingCorpus {
  if (!dataFile) return buildPretrainingCorpus(seed);
  const { pretraining } = readEncoderData(dataFile);
  if (pretraining.seed !== seed) {
    throw new Error(`${dataFile} holds the corpus split with seed ${pretraining.seed}, not ${seed}.`);
  }
  return pretraining;
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      output: { type: 'string', default: '.cache/encoder-data.safetensors' },
      seed: { type: 'string', default: '0' },
    },
  });
  const started = performance.now();
  const pretraining = buildPretrainingCorpus(Number(values.seed));
  const tasks = [buildTask('brown-genre'), buildTask('spam-assassin')];
  saveEncoderData(values.output!, pretraining, tasks);
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  console.log(
    `${values.output}: ${pretraining.corpus.train.count} + ${pretraining.corpus.validation.count} pretraining sequences; ` +
      tasks.map((task) => `${task.name} ${task.train.labels.length} / ${task.dev.labels.length}`).join(', ') +
      ` (${seconds} s)`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await main();
}
