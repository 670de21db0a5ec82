import type { Dataset } from '@fineprune/datasets';
import type { PackageImporter, PluginRegistry, Recipe } from '@fineprune/recipes';
import type { WasmThreads } from '@fineprune/tensor';
import type { EvaluationPoint, RunRecord } from './run-record';

/**
 * What {@link runRecipe} reports while it runs (also printed as NDJSON by `fineprune run --json`).
 *
 * @example
 * ```ts
 * const onEvent = (event: RunEvent) => { if (event.type === 'evaluate') console.log(event.point.accuracy); };
 * ```
 */
export type RunEvent =
  | {
      type: 'start';
      name: string;
      backend: string;
      startStep: number;
      totalSteps: number;
      resumed: boolean;
      parameters: number;
      checkpointDirectory: string;
      outputDirectory: string;
    }
  | {
      type: 'step';
      step: number;
      totalSteps: number;
      loss: number;
      taskLoss: number;
      targets: Record<string, number>;
      /** Fraction of prunable weights kept, read from the masks when they last changed. */
      remaining: number;
      learningRates: Record<string, number>;
      elapsedSeconds: number;
      etaSeconds: number;
    }
  | { type: 'evaluate'; point: EvaluationPoint; dense: boolean }
  | { type: 'checkpoint'; step: number; directory: string }
  | { type: 'interrupted'; step: number; checkpointDirectory: string }
  | { type: 'done'; record: RunRecord; outputDirectory: string };

/**
 * Options of {@link runRecipe}.
 *
 * @example
 * ```ts
 * const options: RunRecipeOptions = { recipe, baseDirectory: '.', resume: true };
 * ```
 */
export interface RunRecipeOptions {
  recipe: Recipe;
  /** Directory that relative paths of the recipe start from (the recipe file's). */
  baseDirectory: string;
  /** A name for messages (the recipe file). */
  source?: string;
  /** Default: {@link builtinRegistry}. Packages in `recipe.plugins` are loaded into it. */
  registry?: PluginRegistry;
  /** Continue from the checkpoint when one exists. */
  resume?: boolean;
  /** Override the checkpoint directory (default `recipe.checkpoint.directory`, else `<output>/checkpoint`). */
  checkpointDirectory?: string;
  /** Override the output directory (default `recipe.export.directory`, else `out/<name>`). */
  outputDirectory?: string;
  /** Abort to stop after the current step; a checkpoint is written before returning. */
  signal?: AbortSignal;
  onEvent?(event: RunEvent): void;
  /** Reuse an already loaded dataset (tests). */
  dataset?: Dataset;
  /** How plugin packages are imported (tests, bundlers). */
  importer?: PackageImporter;
  /** How long to wait for each plugin package's import (default 60 s, `DEFAULT_PLUGIN_IMPORT_TIMEOUT_MS`). */
  pluginTimeoutMs?: number;
  /**
   * Threads of the wasm backend (1 to 8, or `'auto'` for one per core); default: the
   * `FINEPRUNE_WASM_THREADS` environment variable, else 1.
   */
  wasmThreads?: WasmThreads;
}

/**
 * What {@link runRecipe} returns.
 *
 * @example
 * ```ts
 * const outcome: RunOutcome = await runRecipe(options);
 * if (outcome.status === 'interrupted') process.exitCode = 130;
 * ```
 */
export interface RunOutcome {
  status: 'completed' | 'interrupted';
  step: number;
  outputDirectory: string;
  checkpointDirectory: string;
  record?: RunRecord;
}
