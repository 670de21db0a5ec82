import { cpSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fileSystem } from '@fineprune/layers';
import { releaseWasmBackend, setBackend, wasmThreadsInUse } from '@fineprune/tensor';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli';
import { ExitCodes } from '../src/exit-codes';
import { readSavedModel } from '../src/report/read-model';
import { runRecipe } from '../src/run-recipe';
import { validateRecipe } from '@fineprune/recipes';
import { captureIo, dataset, RECIPES_DIRECTORY, recipeFile, temporaryDirectory, tinyRecipe } from './support';

describe('fineprune command', () => {
  let runDirectory: string;

  beforeAll(async () => {
    await setBackend('cpu');
    runDirectory = temporaryDirectory();
    const outcome = await runRecipe({
      recipe: validateRecipe(tinyRecipe()),
      baseDirectory: runDirectory,
      outputDirectory: runDirectory,
      dataset: await dataset('mnist'),
    });
    expect(outcome.status).toBe('completed');
  });

  it('validates recipes, with exit code 3 and the path, cause and fix of each problem', async () => {
    const good = captureIo();
    expect(await main(['validate', recipeFile(tinyRecipe())], good)).toBe(ExitCodes.OK);
    expect(good.out()).toMatch(/valid/);
    const bad = captureIo();
    const broken = { ...tinyRecipe(), training: { steps: 0, optimizer: { learningRate: -1 } } };
    expect(await main(['validate', recipeFile(broken), '--json'], bad)).toBe(ExitCodes.INVALID_RECIPE);
    const error = JSON.parse(bad.out().trim().split('\n').at(-1)!);
    expect(error).toMatchObject({ type: 'error', code: 'INVALID_RECIPE', exitCode: 3 });
    expect(error.details.issues.map((issue: { path: string }) => issue.path)).toEqual([
      'training.steps',
      'training.optimizer.learningRate',
    ]);
    expect(bad.err()).toMatch(/fix: /);
    const unknown = captureIo();
    const typo = tinyRecipe();
    typo.pruning[0]!.scores = { id: 'magnitud' };
    expect(await main(['validate', recipeFile(typo)], unknown)).toBe(ExitCodes.INVALID_RECIPE);
    expect(unknown.err()).toMatch(/UNKNOWN_PLUGIN[\s\S]*Did you mean "magnitude"/);
  });

  it('maps usage errors to 2, unreadable files to 4 and unknown plugin packages to 6', async () => {
    expect(await main(['frobnicate'], captureIo())).toBe(ExitCodes.USAGE);
    expect(await main(['run'], captureIo())).toBe(ExitCodes.USAGE);
    expect(await main(['run', 'x.yaml', '--max-steps', 'many'], captureIo())).toBe(ExitCodes.USAGE);
    expect(await main(['--help'], captureIo())).toBe(ExitCodes.OK);
    expect(await main(['run', '/no/such/recipe.yaml'], captureIo())).toBe(ExitCodes.IO);
    expect(await main(['report', '/no/such/model'], captureIo())).toBe(ExitCodes.IO);
    const missing = captureIo();
    expect(
      await main(
        ['validate', recipeFile({ ...tinyRecipe(), plugins: ['fineprune-criterion-nope'] })],
        missing,
      ),
    ).toBe(ExitCodes.PLUGIN_PACKAGE);
    expect(missing.err()).toMatch(/npm install fineprune-criterion-nope/);
  });

  it('reports a run, a checkpoint and a stripped model: per-layer table and histograms, also as JSON', async () => {
    const text = captureIo();
    expect(await main(['report', runDirectory], text)).toBe(ExitCodes.OK);
    expect(text.out()).toMatch(/parameter\s+shape\s+kept\s+total\s+sparsity/);
    expect(text.out()).toMatch(/dense_1\/kernel\s+\[784, 16\]/);
    expect(text.out()).toMatch(/total\s+\d+\s+\d+\s+80\.00%/);
    expect(text.out()).toMatch(/kept weights per parameter:\n.*[▁▂▃▄▅▆▇█]/);
    const json = captureIo();
    expect(await main(['report', path.join(runDirectory, 'checkpoint'), '--json'], json)).toBe(ExitCodes.OK);
    const report = JSON.parse(json.out());
    expect(report.kind).toBe('checkpoint');
    expect(report.step).toBe(12);
    expect(report.layers.map((row: { name: string }) => row.name)).toEqual([
      'dense_1/kernel',
      'dense_2/kernel',
    ]);
    expect(report.histograms[0].counts.length).toBe(40);
    // An interrupted run has a checkpoint but no run.json yet: report reads the checkpoint.
    const interrupted = temporaryDirectory();
    cpSync(path.join(runDirectory, 'checkpoint'), path.join(interrupted, 'checkpoint'), { recursive: true });
    const partial = captureIo();
    expect(await main(['report', interrupted, '--json'], partial)).toBe(ExitCodes.OK);
    expect(JSON.parse(partial.out()).kind).toBe('checkpoint');
  });

  it('exports a stripped model that stock TF.js loads, with the masks applied', async () => {
    const out = path.join(temporaryDirectory(), 'stripped');
    const result = captureIo();
    expect(await main(['export', runDirectory, '--strip', '--out', out, '--json'], result)).toBe(
      ExitCodes.OK,
    );
    const exported = JSON.parse(result.out());
    expect(exported.sparsity).toBeCloseTo(0.8, 2);
    const model = await tfl.loadLayersModel(fileSystem(out));
    expect(model.layers.length).toBe(2);
    model.dispose();
    const summary = await readSavedModel(out);
    expect(summary.kind).toBe('model');
    expect(await main(['export', runDirectory], captureIo())).toBe(ExitCodes.USAGE);
  });

  it('lists plugins (built-in and from packages) and prints the schema', async () => {
    const list = captureIo();
    expect(await main(['plugins', '--json'], list)).toBe(ExitCodes.OK);
    const ids = JSON.parse(list.out()).map(
      (entry: { kind: string; id: string }) => `${entry.kind}:${entry.id}`,
    );
    expect(ids).toEqual(
      expect.arrayContaining(['scores:magnitude', 'mask:topV', 'schedule:cubic', 'schedule:constant']),
    );
    const schema = captureIo();
    expect(await main(['schema'], schema)).toBe(ExitCodes.OK);
    expect(JSON.parse(schema.out()).title).toBe('fineprune recipe');
    expect(existsSync(path.join(RECIPES_DIRECTORY, 'gradual-magnitude.yaml'))).toBe(true);
  });

  it('builds the model from a module or loads a saved TF.js model, with parameter groups', async () => {
    const fixtures = fileURLToPath(new URL('./__fixtures__/', import.meta.url));
    const mnist = await dataset('mnist');
    const fromModule = await runRecipe({
      recipe: validateRecipe(
        tinyRecipe({
          model: { module: './build-model.mjs', export: 'buildModel' },
          parameters: { exclude: ['logits/kernel'], frozen: [{ pattern: '^logits/' }] },
          training: { steps: 4, optimizer: { learningRate: 0.01 } },
          pruning: [
            {
              scores: { id: 'magnitude' },
              mask: { id: 'topV' },
              schedule: { id: 'constant', options: { sparsity: 0.5 } },
            },
          ],
        }),
      ),
      baseDirectory: fixtures,
      outputDirectory: temporaryDirectory(),
      dataset: mnist,
    });
    expect(fromModule.record!.layers.map((row) => [row.name, row.sparsity])).toEqual([
      ['hidden/kernel', 0.5],
    ]);
    const saved = await tfl.loadLayersModel(fileSystem(path.join(fromModule.outputDirectory, 'model')));
    expect(saved.getLayer('logits')).toBeDefined();
    saved.dispose();
    const fromPath = await runRecipe({
      recipe: validateRecipe(
        tinyRecipe({
          model: { path: path.join(fromModule.outputDirectory, 'model') },
          training: { steps: 12, optimizer: { learningRate: 0.01 } },
        }),
      ),
      baseDirectory: fixtures,
      outputDirectory: temporaryDirectory(),
      dataset: mnist,
    });
    expect(fromPath.record!.layers.map((row) => row.name)).toEqual(['hidden/kernel', 'logits/kernel']);
    const missing = captureIo();
    const file = recipeFile({ ...tinyRecipe(), model: { module: './nope.mjs' } });
    expect(await main(['run', file], missing)).toBe(ExitCodes.IO);
    expect(missing.err()).toMatch(/model\.module: \.\/nope\.mjs cannot be imported/);
  });

  it('runs on as many wasm threads as --threads says, and rejects a malformed count as a usage error', async () => {
    const bad = captureIo();
    expect(await main(['run', 'x.yaml', '--threads', 'many'], bad)).toBe(ExitCodes.USAGE);
    expect(bad.err()).toMatch(/--threads must be a whole number of wasm threads from 1 to 8 or 'auto'/);
    expect(await main(['run', 'x.yaml', '--threads', '9'], captureIo())).toBe(ExitCodes.USAGE);
    // The thread count is fixed when wasm starts: start it afresh here, and again after.
    releaseWasmBackend();
    try {
      const file = recipeFile(tinyRecipe({ backend: 'wasm' }));
      const out = path.join(path.dirname(file), 'out');
      const io = captureIo();
      const args = [
        'run',
        file,
        '--json',
        '--max-steps',
        '6',
        '--train-limit',
        '100',
        '--out',
        out,
        '--threads',
        '2',
      ];
      expect(await main(args, io)).toBe(ExitCodes.OK);
      expect(
        io
          .out()
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line))
          .at(-1),
      ).toMatchObject({ type: 'done', steps: 6 });
      expect(wasmThreadsInUse()).toBe(2);
    } finally {
      releaseWasmBackend();
      await setBackend('cpu');
    }
  });

  it('runs a recipe with --json events and shortening flags, and --resume of a finished run changes nothing', async () => {
    const file = recipeFile(
      tinyRecipe({ training: { steps: 40, optimizer: { learningRate: 0.01 }, evaluateEvery: 10 } }),
    );
    const out = path.join(path.dirname(file), 'out');
    const first = captureIo();
    expect(
      await main(['run', file, '--json', '--max-steps', '8', '--train-limit', '100', '--out', out], first),
    ).toBe(ExitCodes.OK);
    const events = first
      .out()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(events[0]).toMatchObject({ type: 'start', totalSteps: 8, resumed: false });
    expect(events.filter((event) => event.type === 'step').at(-1)).toMatchObject({ step: 8, totalSteps: 8 });
    expect(events.at(-1)).toMatchObject({ type: 'done', steps: 8 });
    const again = captureIo();
    expect(
      await main(
        ['run', file, '--json', '--max-steps', '8', '--train-limit', '100', '--out', out, '--resume'],
        again,
      ),
    ).toBe(ExitCodes.OK);
    const resumed = again
      .out()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(resumed[0]).toMatchObject({ type: 'start', startStep: 8, resumed: true });
    expect(resumed.filter((event) => event.type === 'step')).toEqual([]);
  });
});
