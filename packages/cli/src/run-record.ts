/**
 * One evaluation during a run: metric against remaining weights (Fig. 2 of Movement Pruning).
 *
 * @example
 * ```ts
 * record.evaluations.map((point: EvaluationPoint) => [point.remaining, point.accuracy]);
 * ```
 */
export interface EvaluationPoint {
  step: number;
  /** Fraction of prunable weights kept, in [0, 1]. */
  remaining: number;
  accuracy: number;
  loss: number;
  /** F1 of class 1 (binary tasks), when `training.metrics` asks for it. */
  f1?: number;
  /** Mean F1 over the classes, when `training.metrics` asks for it. */
  macroF1?: number;
}

/**
 * The loss change caused by one mask update, on a fixed evaluation batch: ΔL(θ, Δθ) of *Revisiting
 * Loss Modelling* (Sec. 3), measured right before and right after the masks change.
 *
 * @example
 * ```ts
 * record.lossChanges.map((change: LossChange) => change.after - change.before);
 * ```
 */
export interface LossChange {
  step: number;
  group: string;
  target: number;
  before: number;
  after: number;
}

/**
 * Kept and total weights of one parameter (Fig. 6 of Movement Pruning).
 *
 * @example
 * ```ts
 * record.layers.map((row: LayerRow) => `${row.name}: ${row.kept}/${row.total}`);
 * ```
 */
export interface LayerRow {
  name: string;
  group: string;
  shape: number[];
  total: number;
  kept: number;
  sparsity: number;
}

/**
 * A histogram: `counts[i]` values fell in `[edges[i], edges[i + 1])`.
 *
 * @example
 * ```ts
 * const { edges, counts }: Histogram = sample.keptHistogram;
 * ```
 */
export interface Histogram {
  edges: number[];
  counts: number[];
}

/**
 * Samples of one parameter for the plots of Fig. 4: weights, scores and whether each was kept.
 *
 * @example
 * ```ts
 * const sample: ParameterSample = record.samples[0]!;
 * ```
 */
export interface ParameterSample {
  name: string;
  /** Where the scores came from: the learned score variable, the score strategy, or |W|. */
  scoreSource: 'learned' | 'computed' | 'magnitude';
  weights: number[];
  scores: number[];
  kept: number[];
  /** Histogram of the kept weights of the whole parameter (Fig. 4a). */
  keptHistogram: Histogram;
}

/**
 * The run history a checkpoint carries, so a resumed run reports the whole run.
 *
 * @example
 * ```ts
 * const history: RunHistory = { evaluations: [], lossChanges: [], seconds: 0 };
 * ```
 */
export interface RunHistory {
  /** Test metrics of the dense model, measured just before the first mask update with a non-zero target. */
  dense?: { step: number; accuracy: number; loss: number };
  evaluations: EvaluationPoint[];
  lossChanges: LossChange[];
  /** Seconds of training before the last resume. */
  seconds: number;
  /** True once the final mask update of `training.finalMaskUpdate` has been made (it is made once). */
  finalMasks?: boolean;
}

/**
 * How many units (neurons, filters, heads) of one structure of the model remain, for models that
 * list `structures()` (see `unitReport` of `@fineprune/core`).
 *
 * @example
 * ```ts
 * const row: UnitRow = { name: 'dense_1/neurons', kind: 'neuron', count: 300, kept: 75 };
 * ```
 */
export interface UnitRow {
  name: string;
  kind: string;
  count: number;
  kept: number;
}

/**
 * What a shrinking export (`export.shrink`, `fineprune export --shrink`) removed: the units each
 * structure kept, the layers whose units stayed whole (with why), and the model's parameters and
 * float32 weight bytes before and after.
 *
 * @example
 * ```ts
 * const record: ShrinkRecord = { structures: [{ name: 'dense_1/neurons', kind: 'neuron', count: 300, kept: 120 }],
 *   skipped: [{ layer: 'dense_3', reason: 'a model output' }], parametersBefore: 266610, parametersAfter: 108330,
 *   bytesBefore: 1066440, bytesAfter: 433320 };
 * ```
 */
export interface ShrinkRecord {
  structures: UnitRow[];
  skipped: Array<{ layer: string; reason: string }>;
  parametersBefore: number;
  parametersAfter: number;
  bytesBefore: number;
  bytesAfter: number;
}

/**
 * The mask of one weight matrix pruned by blocks, downsampled for the report's picture: the last
 * two axes (leading axes such as kernel taps count a position kept when any tap is), cut into
 * `cellRows × cellCols` cells, each holding the fraction of its entries kept, row-major.
 *
 * @example
 * ```ts
 * const pattern: BlockPattern = { name: 'fc/kernel', shape: [64, 64], cellRows: 2, cellCols: 2, gridRows: 32, gridCols: 32, kept: [...] };
 * ```
 */
export interface BlockPattern {
  name: string;
  shape: number[];
  cellRows: number;
  cellCols: number;
  gridRows: number;
  gridCols: number;
  /** Fraction kept in each cell, in [0, 1], `gridRows · gridCols` values, row-major. */
  kept: number[];
}

/**
 * What `fineprune run` writes to `run.json`, and what `report` reads back.
 *
 * @example
 * ```ts
 * const record: RunRecord = JSON.parse(await readFile('out/run/run.json', 'utf8'));
 * ```
 */
export interface RunRecord extends RunHistory {
  formatVersion: 1;
  name: string;
  /** A short label for plots (the methods of each group). */
  method: string;
  backend: string;
  steps: number;
  seed: number;
  final: { accuracy: number; loss: number; remaining: number; f1?: number; macroF1?: number };
  /** The best evaluation by `training.keepBest.metric`, whose model is in `<out>/best`. */
  best?: EvaluationPoint & { metric: string };
  layers: LayerRow[];
  /** Remaining units per structure (models with `structures()`); absent in older records. */
  units?: UnitRow[];
  /** Block-mask pictures of the parameters pruned by blocks; absent when none. */
  blockPatterns?: BlockPattern[];
  /** What the shrinking export removed (`export.shrink`); absent otherwise. */
  shrink?: ShrinkRecord;
  samples: ParameterSample[];
  recipe: unknown;
  finishedAt: string;
}

/**
 * ΔL of a run: the sum of the loss changes of its mask updates (each measured on the same batch).
 *
 * @example
 * ```ts
 * totalLossChange(record.lossChanges); // 0.42
 * ```
 */
export function totalLossChange(changes: readonly LossChange[]): number {
  return changes.reduce((sum, change) => sum + (change.after - change.before), 0);
}
