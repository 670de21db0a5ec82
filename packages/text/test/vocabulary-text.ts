/** Text for tests that need many wordpieces but no corpus (not exported from the package). */

import { createRandom } from '@fineprune/tensor';
import type { BertTokenizer } from '../src/tokenizer';

/**
 * `documents` texts of `words` space-separated words each, drawn by a seeded generator from the
 * vocabulary's lowercase whole-word entries (`[a-z]+`, no `##` continuation, no reserved token).
 * WordPiece matches a whole vocabulary word in one piece, so the texts hold exactly
 * `documents × words` wordpieces.
 */
export function vocabularyDocuments(
  tokenizer: BertTokenizer,
  documents: number,
  words: number,
  seed = 0,
): string[] {
  const entries = tokenizer.vocabulary.filter((entry) => /^[a-z]+$/.test(entry));
  const random = createRandom(seed);
  return Array.from({ length: documents }, () =>
    Array.from({ length: words }, () => entries[Math.floor(random.next() * entries.length)]!).join(' '),
  );
}
