/**
 * Writes the SpamAssassin ham/spam task of @fineprune/corpora as JSON Lines, one
 * `{"text": …, "label": "ham" | "spam"}` per line: data/spam/train.jsonl and data/spam/dev.jsonl.
 * The split is the corpus package's own (seed 0, the split of the encoder benchmarks), in its order,
 * so that the recipes here train on the same examples as `bench/src/encoder-transfer.ts`.
 *
 *     pnpm write-spam            # or: tsx write-spam-jsonl.ts [directory]
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spamTask } from '@fineprune/corpora';

/** The split seed of the benchmarks' SpamAssassin task. */
export const SPAM_SPLIT_SEED = 0;

/**
 * Writes `<directory>/train.jsonl` and `<directory>/dev.jsonl`.
 *
 * @returns the number of rows of each file
 */
export function writeSpamJsonl(directory: string): { train: number; dev: number } {
  const task = spamTask({ seed: SPAM_SPLIT_SEED });
  mkdirSync(directory, { recursive: true });
  const lines = (examples: typeof task.train) =>
    `${examples.map((example) => JSON.stringify({ text: example.text, label: task.labels[example.label] })).join('\n')}\n`;
  writeFileSync(path.join(directory, 'train.jsonl'), lines(task.train));
  writeFileSync(path.join(directory, 'dev.jsonl'), lines(task.dev));
  return { train: task.train.length, dev: task.dev.length };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const directory =
    process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), 'data', 'spam');
  const counts = writeSpamJsonl(directory);
  console.log(`wrote ${counts.train} training and ${counts.dev} dev rows to ${directory}`);
}
