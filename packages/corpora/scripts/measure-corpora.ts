/**
 * Loads every corpus, tokenizes it and prints sizes and timings, then builds both tasks.
 * Run from packages/corpora: `npx tsx --conditions=source scripts/measure-corpora.ts`.
 */

import { createBertTokenizer, mlmCorpus } from '@fineprune/text';
import {
  brownGenreTask,
  loadBrown,
  loadMobyDick,
  loadSotu,
  loadSpamAssassin,
  spamTask,
  type TextDocument,
} from '../src/index';

function timed<T>(label: string, run: () => T): T {
  const start = performance.now();
  const result = run();
  console.log(`${label}: ${((performance.now() - start) / 1000).toFixed(2)} s`);
  return result;
}

const tokenizer = timed('tokenizer', () => createBertTokenizer());
const corpora: [string, () => TextDocument[]][] = [
  ['brown', loadBrown],
  ['sotu', loadSotu],
  ['moby-dick', loadMobyDick],
];
let all: TextDocument[] = [];
for (const [name, load] of corpora) {
  const documents = timed(`load ${name}`, load);
  const characters = documents.reduce((sum, d) => sum + d.text.length, 0);
  const pieces = timed(`tokenize ${name}`, () =>
    documents.reduce((sum, d) => sum + tokenizer.tokenIds(d.text).length, 0),
  );
  console.log(`  ${name}: ${documents.length} documents, ${characters} characters, ${pieces} wordpieces`);
  all = all.concat(documents);
}
const corpus = timed('mlmCorpus (all three)', () =>
  mlmCorpus(tokenizer, all, { sequenceLength: 128, seed: 0 }),
);
console.log(
  `  ${corpus.wordpieces} wordpieces, ${corpus.train.count} train / ${corpus.validation.count} validation sequences`,
);
const mails = timed('load spam-assassin', loadSpamAssassin);
console.log(
  `  ${mails.filter((m) => m.label === 'ham').length} ham / ${mails.filter((m) => m.label === 'spam').length} spam`,
);
const spam = timed('spamTask', () => spamTask({ seed: 0, messages: mails }));
console.log(' ', JSON.stringify(spam.stats));
const brown = timed('brownGenreTask', () => brownGenreTask(tokenizer, { seed: 0 }));
console.log(
  `  ${brown.train.length} train / ${brown.dev.length} dev chunks, ${brown.stats.wordpieces} wordpieces, overlong ${brown.stats.overlongChunks}`,
);
for (const row of brown.stats.perGenre) {
  console.log(
    `  ${row.genre.padEnd(16)} documents ${row.trainDocuments}/${row.devDocuments}  chunks ${row.trainChunks}/${row.devChunks}`,
  );
}
