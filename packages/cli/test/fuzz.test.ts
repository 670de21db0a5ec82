import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { validateRecipe } from '@fineprune/recipes';
import { createRandom, setBackend } from '@fineprune/tensor';
import { bertBaseUncasedConfig, createBertModel } from '@fineprune/transformers';
import { saveHuggingFaceDirectory } from '@fineprune/transformers/node';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { runRecipe } from '../src/run-recipe';
import { type BaseFiles, buildCases } from './fuzz/cases';
import { type HarnessLimits, runCases } from './fuzz/harness';
import type { CaseResult, FuzzCase } from './fuzz/protocol';
import { dataset, temporaryDirectory, tinyRecipe } from './support';

/**
 * The bounds every case must stay within. A child process starts at about 200 MB resident (Node,
 * tsx, TF.js and every package); the bound leaves room for the largest legitimate input of a case
 * (the 90 MB tensor name is read whole: file bytes plus the decoded header string).
 */
const LIMITS: HarnessLimits = {
  heapMegabytes: 512,
  rssLimitBytes: 1024 * 1024 * 1024,
  // A hang, not a slow case: a loaded 2-core machine needs a few seconds for the slowest export.
  caseTimeoutMs: 60_000,
  startTimeoutMs: 180_000,
  casesPerChild: 60,
};
/** Seed of the random mutations: the same seed writes the same files. */
const SEED = 15;
/** Random mutations per format (FUZZ_FILE_CASES raises it for a longer local run). */
const PER_FORMAT = Number(process.env.FUZZ_FILE_CASES ?? 40);

let root: string | undefined;
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

async function baseFiles(directory: string): Promise<BaseFiles> {
  await setBackend('cpu');
  const run = path.join(directory, 'run');
  const outcome = await runRecipe({
    recipe: validateRecipe(tinyRecipe()),
    baseDirectory: directory,
    outputDirectory: run,
    dataset: await dataset('mnist'),
  });
  expect(outcome.status).toBe('completed');
  const huggingface = path.join(directory, 'huggingface');
  const config = {
    ...bertBaseUncasedConfig,
    vocabSize: 13,
    hiddenSize: 4,
    numLayers: 2,
    numHeads: 2,
    intermediateSize: 8,
    maxPositions: 8,
  };
  const model = createBertModel({ config, task: { type: 'classification', numLabels: 3 }, seed: 1 });
  await saveHuggingFaceDirectory(model, huggingface);
  model.dispose();
  const recipe = path.join(directory, 'recipe.yaml');
  writeFileSync(recipe, stringify(tinyRecipe()));
  return { run, huggingface, recipe };
}

function describeFailure(fuzzCase: FuzzCase, result: CaseResult): string {
  return `${fuzzCase.id} [${fuzzCase.operation} ${fuzzCase.paths.join(' ')}]: ${result.outcome} ${result.code} ${result.message.slice(0, 600)}`;
}

describe('untrusted files under generated bad inputs, each case in a memory-capped child process', () => {
  it(
    'end only in typed FinepruneErrors (or success), never hang, and stay under the memory bound',
    { timeout: 1_800_000 },
    async () => {
      root = temporaryDirectory('fineprune-fuzz-');
      const cases = await buildCases(
        path.join(root, 'cases'),
        await baseFiles(root),
        createRandom(SEED),
        PER_FORMAT,
      );
      const results = await runCases(cases, LIMITS);
      expect(results).toHaveLength(cases.length);

      const failures: string[] = [];
      const counts: Record<string, Record<string, number>> = {};
      let peak = 0;
      for (const [index, fuzzCase] of cases.entries()) {
        const result = results[index]!;
        counts[fuzzCase.format] ??= {};
        const format = counts[fuzzCase.format]!;
        format[result.code] = (format[result.code] ?? 0) + 1;
        peak = Math.max(peak, result.sampledPeakBytes, result.maxRssBytes);
        if (result.outcome !== 'ok' && result.outcome !== 'typed')
          failures.push(describeFailure(fuzzCase, result));
        else if (fuzzCase.expect && !fuzzCase.expect.includes(result.code))
          failures.push(`${describeFailure(fuzzCase, result)} (expected ${fuzzCase.expect.join(' or ')})`);
        else if (result.outcome === 'typed' && result.messageLength > 5000)
          failures.push(
            `${describeFailure(fuzzCase, result)} (a message of ${result.messageLength} characters)`,
          );
      }
      const largest = [...results].sort((a, b) => b.sampledPeakBytes - a.sampledPeakBytes).slice(0, 3);
      console.info(
        `file fuzz: ${cases.length} cases (seed ${SEED}), peak resident memory of a child ${(peak / 2 ** 20).toFixed(0)} MiB ` +
          `(bound ${(LIMITS.rssLimitBytes / 2 ** 20).toFixed(0)} MiB); largest: ${largest
            .map((result) => `${result.id} ${(result.sampledPeakBytes / 2 ** 20).toFixed(0)} MiB`)
            .join('; ')}`,
        counts,
      );
      console.info(
        `named cases (code, peak resident memory of the child):\n${cases
          .flatMap((fuzzCase, index) =>
            fuzzCase.expect
              ? [
                  `  ${fuzzCase.id}: ${results[index]!.code}, ${(results[index]!.sampledPeakBytes / 2 ** 20).toFixed(0)} MiB`,
                ]
              : [],
          )
          .join('\n')}`,
      );
      expect(failures).toEqual([]);
      expect(peak).toBeLessThanOrEqual(LIMITS.rssLimitBytes);
      // Every format's bad inputs were reached and refused (not all accepted as valid).
      for (const format of [
        'model-json',
        'checkpoint',
        'safetensors',
        'idx',
        'huggingface',
        'recipe',
        'compact',
        'text-data',
        'image-folder',
      ])
        expect(
          Object.keys(counts[format] ?? {}).filter((code) => code !== 'OK').length,
          format,
        ).toBeGreaterThan(0);
    },
  );
});
