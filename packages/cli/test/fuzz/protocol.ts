/** What the fuzz harness and its child processes say to each other (test code, not published). */

/** What a case runs on its files. */
export type FuzzOperation =
  | 'report'
  | 'export'
  | 'load-checkpoint'
  | 'load-model'
  | 'idx'
  | 'safetensors'
  | 'huggingface'
  | 'load-compact'
  | 'validate'
  | 'text-data'
  | 'image-folder';

/** The untrusted file formats the suite covers. */
export type FuzzFormat =
  | 'model-json'
  | 'checkpoint'
  | 'safetensors'
  | 'idx'
  | 'huggingface'
  | 'recipe'
  | 'compact'
  | 'text-data'
  | 'image-folder';

/**
 * One generated bad input: the files are written by the harness before the case runs; the child
 * runs `operation` on `paths`.
 */
export interface FuzzCase {
  id: string;
  format: FuzzFormat;
  operation: FuzzOperation;
  /** The directory or files the operation reads (and, for `export`, the output directory last). */
  paths: string[];
  /** For a named case from the issue: the error codes it may end with (`OK` for success). */
  expect?: string[];
  /** Run in a child process of its own (the heavy named cases), so its peak memory is its own. */
  isolate?: boolean;
}

/** How a case ended, as the child reports it. */
export interface ChildResult {
  id: string;
  outcome: 'ok' | 'typed' | 'untyped';
  /** The FinepruneError code (typed), or `OK`. */
  code: string;
  /** The error message (cut to 2,000 characters) or the stack of an untyped error. */
  message: string;
  /** Length of the whole message, to check that messages stay short. */
  messageLength: number;
  /** The child's peak resident memory so far (process.resourceUsage().maxRSS), in bytes. */
  maxRssBytes: number;
}

/** How a case ended, as the harness records it. */
export interface CaseResult extends Omit<ChildResult, 'outcome'> {
  outcome: ChildResult['outcome'] | 'timeout' | 'memory' | 'crashed';
  /** The largest resident memory the harness sampled while the case ran, in bytes. */
  sampledPeakBytes: number;
}
