import path from 'node:path';
import { parseArgs } from 'node:util';
import type { StepResult } from '@fineprune/core';
import { runGradualMagnitude } from './job';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    sparsity: { type: 'string', default: '0.9' },
    epochs: { type: 'string', default: '10' },
    scope: { type: 'string', default: 'global' },
    out: { type: 'string', default: path.resolve(process.cwd(), 'out', 'mnist-mlp-pruned') },
    seed: { type: 'string', default: '42' },
  },
});

const interactive = process.stdout.isTTY === true;
let started = 0;
let smoothedLoss = Number.NaN;
let lastPrinted = 0;

function formatSeconds(seconds: number): string {
  const minutes = Math.floor(seconds / 60);
  return `${minutes}:${String(Math.round(seconds % 60)).padStart(2, '0')}`;
}

function progress(result: StepResult, totalSteps: number): void {
  if (started === 0) started = performance.now();
  smoothedLoss = Number.isNaN(smoothedLoss) ? result.loss : 0.98 * smoothedLoss + 0.02 * result.loss;
  const now = performance.now();
  if (result.step !== totalSteps && now - lastPrinted < (interactive ? 200 : 10_000)) return;
  lastPrinted = now;
  const elapsed = (now - started) / 1000;
  const eta = (elapsed / result.step) * (totalSteps - result.step);
  const width = 24;
  const filled = Math.round((result.step / totalSteps) * width);
  const line =
    `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] step ${result.step}/${totalSteps}` +
    `  loss ${smoothedLoss.toFixed(4)}  sparsity ${(result.targets.default! * 100).toFixed(1)}%` +
    `  lr ${result.learningRates.weights!.toExponential(1)}  elapsed ${formatSeconds(elapsed)}  eta ${formatSeconds(eta)}`;
  if (interactive) process.stdout.write(`\r${line}`);
  else console.log(line);
}

async function main(): Promise<void> {
  console.log('fineprune main job: gradual magnitude pruning of a 784-300-100-10 MLP on full MNIST');
  const result = await runGradualMagnitude({
    backend: values.backend!,
    sparsity: Number(values.sparsity),
    epochs: Number(values.epochs),
    // 20% dense warm-up and 30% cool-down, whatever the length (2 and 3 of the default 10 epochs).
    warmupEpochs: Math.round(Number(values.epochs) * 0.2),
    cooldownEpochs: Math.round(Number(values.epochs) * 0.3),
    scope: values.scope as 'local' | 'global',
    seed: Number(values.seed),
    outputDirectory: values.out!,
    onStep: progress,
    onEvaluate: (label, accuracy) => {
      if (interactive) process.stdout.write('\n');
      console.log(`test accuracy, ${label}: ${(accuracy * 100).toFixed(2)}%`);
    },
  });
  console.log(`\nbackend: ${result.backend.backend} (${result.backend.explanation})`);
  const rows = result.report.parameters.map((row) => [
    row.name,
    `[${row.shape.join(', ')}]`,
    String(row.kept),
    `${(row.sparsity * 100).toFixed(2)}%`,
  ]);
  rows.push(['total', '', String(result.report.kept), `${(result.report.sparsity * 100).toFixed(2)}%`]);
  const header = ['parameter', 'shape', 'kept', 'sparsity'];
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]!.length)),
  );
  const format = (row: string[]) =>
    row
      .map((cell, column) => (column < 2 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)))
      .join('  ');
  console.log(format(header));
  console.log(widths.map((width) => '-'.repeat(width)).join('  '));
  for (const row of rows) console.log(format(row));
  console.log(
    `\ntest accuracy: dense ${(result.denseAccuracy * 100).toFixed(2)}%  →  pruned ${(result.prunedAccuracy * 100).toFixed(2)}% at ${(result.report.sparsity * 100).toFixed(1)}% sparsity`,
  );
  console.log(`stripped model saved to ${result.savedTo} (loads with tf.loadLayersModel)`);
  console.log(`finished ${result.steps} steps in ${formatSeconds(result.seconds)}`);
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
