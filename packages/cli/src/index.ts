/**
 * `@fineprune/cli`: the `fineprune` command (run, report, export, plugins, validate, schema), and
 * the library behind it: {@link runRecipe}, the built-in plugin registry, checkpoints with run
 * history, and the self-contained HTML report with the papers' plots.
 *
 * @packageDocumentation
 */
export { builtinPluginDefinitions, builtinRegistry } from './builtins';
export { type CliIo, main, readRecipeFile } from './cli';
export {
  hasCheckpoint,
  loadRunCheckpoint,
  type RunCheckpointMetadata,
  saveRunCheckpoint,
} from './checkpoint';
export { loadRecipeDataset } from './data-sources';
export { type ExitCode, ExitCodes, exitCodeFor } from './exit-codes';
export { probeWritableDirectory, writeFileAtomic } from './files';
export {
  builtinModel,
  builtinModelSizes,
  loadRecipeModel,
  MAX_BUILTIN_PARAMETERS,
  savedModelDirectory,
} from './models';
export { createProgress, type ProgressOutput } from './progress';
export {
  type HtmlReportOptions,
  keptDistributionPlot,
  lossChangeVersusGapPlot,
  metricVersusRemainingPlot,
  remainingPerLayerPlot,
  renderHtmlReport,
  spearmanRho,
  weightsVersusScoresPlots,
} from './report/html';
export { encoderRemainingPlot } from './report/encoder-figure';
export { readSavedModel, type SavedModelSummary } from './report/read-model';
export { histogram, keptHistogram, sampleParameter } from './report/samples';
export { keptHistograms, layerTable } from './report/text';
export { runRecipe } from './run-recipe';
export { type PreparedRun, prepareRun } from './run-check';
export { checkRunDirectories, runDirectories } from './run-directories';
export { cliVersion } from './version';
export { methodLabel } from './run-results';
export type { RunEvent, RunOutcome, RunRecipeOptions } from './run-types';
export {
  type EvaluationPoint,
  type Histogram,
  type LayerRow,
  type LossChange,
  type ParameterSample,
  type RunHistory,
  type RunRecord,
  totalLossChange,
} from './run-record';
