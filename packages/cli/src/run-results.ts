import path from 'node:path';
import { type PrunableModel, type Pruner, type ScoreStrategy, sparsityReport } from '@fineprune/core';
import { type Recipe, toConfig } from '@fineprune/recipes';
import { createRandom } from '@fineprune/tensor/random';
import { readFloat32 } from '@fineprune/tensor/select';
import { writeFileAtomic } from './files';
import { renderHtmlReport } from './report/html';
import { sampleParameter } from './report/samples';
import { blockPatterns, unitRows } from './report/structure-report';
import { bestEvaluation } from './run-best';
import { exportRunModel } from './run-export';
import { exportTargetOf, type RunModel } from './run-model';
import type { EvaluationPoint, LayerRow, ParameterSample, RunHistory, RunRecord } from './run-record';

/**
 * A short label of the method, from the plugin ids: `magnitude+topV(global)/cubic`.
 *
 * @example
 * ```ts
 * methodLabel(recipe); // 'magnitude+topV(global)/cubic'
 * ```
 */
export function methodLabel(recipe: Recipe): string {
  return recipe.pruning
    .map((group) => {
      const scope = typeof group.mask.options.scope === 'string' ? `(${group.mask.options.scope})` : '';
      return `${group.scores.id}+${group.mask.id}${scope}/${group.schedule.id}`;
    })
    .join(', ');
}

/** Weights, scores and mask of every pruned parameter, sampled for the report's plots. */
async function parameterSamples(
  pruner: Pruner,
  prunable: PrunableModel,
  scoreStrategies: ReadonlyMap<string, ScoreStrategy>,
): Promise<ParameterSample[]> {
  const samples: ParameterSample[] = [];
  for (const entry of pruner.pruned()) {
    const weights = await readFloat32(entry.parameter.weight);
    const mask = await readFloat32(entry.parameter.mask);
    let scores: Float32Array;
    let scoreSource: ParameterSample['scoreSource'];
    if (entry.scores && entry.scores.size === entry.parameter.size) {
      scores = await readFloat32(entry.scores);
      scoreSource = 'learned';
    } else {
      // Computed scores, or learned ones coarser than the weight (one per block), spread over it.
      const strategy = scoreStrategies.get(entry.group)!;
      const computed = await strategy.compute(
        { parameter: entry.parameter, scores: entry.scores },
        { step: pruner.step, model: prunable, random: createRandom(0) },
      );
      scores = await readFloat32(computed);
      computed.dispose();
      scoreSource = entry.scores ? 'learned' : strategy.id === 'magnitude' ? 'magnitude' : 'computed';
    }
    samples.push(sampleParameter(entry.parameter.name, weights, scores, mask, scoreSource));
  }
  return samples;
}

/**
 * The record of a finished run (`run.json`): history, final metrics, per-layer table, samples.
 *
 * @example
 * ```ts
 * const record = await runRecord({ recipe, backend: 'cpu', pruner, prunable, scoreStrategies, history, finalPoint });
 * ```
 */
export async function runRecord(options: {
  recipe: Recipe;
  backend: string;
  pruner: Pruner;
  prunable: PrunableModel;
  scoreStrategies: ReadonlyMap<string, ScoreStrategy>;
  history: RunHistory;
  finalPoint: EvaluationPoint;
}): Promise<RunRecord> {
  const { recipe, pruner, prunable, history, finalPoint } = options;
  const report = await sparsityReport(prunable.parameters());
  const layers: LayerRow[] = report.parameters.map((row) => ({
    name: row.name,
    group: row.group,
    shape: row.shape,
    total: row.total,
    kept: row.kept,
    sparsity: row.sparsity,
  }));
  const samples = await parameterSamples(pruner, prunable, options.scoreStrategies);
  const units = await unitRows(prunable);
  const patterns = await blockPatterns(recipe, pruner);
  const best = bestEvaluation(recipe, history.evaluations);
  const scores = {
    ...(finalPoint.f1 !== undefined ? { f1: finalPoint.f1 } : {}),
    ...(finalPoint.macroF1 !== undefined ? { macroF1: finalPoint.macroF1 } : {}),
  };
  return {
    formatVersion: 1,
    name: recipe.name,
    method: methodLabel(recipe),
    backend: options.backend,
    steps: recipe.training.steps,
    seed: recipe.seed,
    ...history,
    final: {
      accuracy: finalPoint.accuracy,
      loss: finalPoint.loss,
      remaining: 1 - report.sparsity,
      ...scores,
    },
    ...(best ? { best } : {}),
    layers,
    ...(units.length > 0 ? { units } : {}),
    ...(patterns.length > 0 ? { blockPatterns: patterns } : {}),
    samples,
    recipe: toConfig(recipe),
    finishedAt: new Date().toISOString(),
  };
}

/**
 * Writes what a finished run exports: the stripped model (`<out>/model`, with `export.strip`) in the
 * recipe's `export.format`, `run.json` and `report.html` (with `export.report`). A layers model that
 * started from a quantized file is exported in the same quantization, so the export is no larger
 * than the model it came from. With `export.shrink` the model is the physically smaller one, and
 * `run.json` records per structure the units kept and the sizes before and after (`shrink`).
 *
 * @returns the record as written (with `shrink` when the export shrank the model)
 * @example
 * ```ts
 * await writeRunOutputs(recipe, 'out/tiny', opened, record);
 * ```
 */
export async function writeRunOutputs(
  recipe: Recipe,
  outputDirectory: string,
  model: RunModel,
  record: RunRecord,
): Promise<RunRecord> {
  const shrunk = recipe.export.strip
    ? await exportRunModel(
        recipe,
        exportTargetOf(model, recipe.export.dtype),
        path.join(outputDirectory, 'model'),
      )
    : undefined;
  const written = shrunk ? { ...record, shrink: shrunk } : record;
  if (recipe.export.report) {
    await writeFileAtomic(path.join(outputDirectory, 'run.json'), `${JSON.stringify(written)}\n`);
    await writeFileAtomic(path.join(outputDirectory, 'report.html'), renderHtmlReport([written]));
  }
  return written;
}
