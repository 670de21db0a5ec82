import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { validateRecipe } from '@fineprune/recipes';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { builtinRegistry } from '../src/builtins';
import { main } from '../src/cli';
import { runRecipe } from '../src/run-recipe';
import { dataset, temporaryDirectory, tinyRecipe } from './support';

/** Debian's Chromium (`apt-get install -y chromium`); never a downloaded browser. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const OUTPUT = fileURLToPath(new URL('../test-output/', import.meta.url));
const PLOTS = [
  'remaining-per-layer',
  'metric-vs-remaining',
  'weights-vs-scores',
  'kept-weight-distribution',
  'loss-change-vs-gap',
];

function capture() {
  let text = '';
  return {
    write: (chunk: string) => {
      text += chunk;
    },
    text: () => text,
  };
}

describe('HTML report in a real headless browser', () => {
  it('renders every plot of the papers with data, without network, and keeps a screenshot', async () => {
    expect(existsSync(CHROMIUM), `Chromium is missing at ${CHROMIUM}: apt-get install -y chromium`).toBe(
      true,
    );
    const registry = builtinRegistry();
    const mnist = await dataset('mnist');
    const variants = [
      { name: 'magnitude-global', scores: 'magnitude', scope: 'global', sparsity: 0.8 },
      { name: 'magnitude-local', scores: 'magnitude', scope: 'local', sparsity: 0.9 },
      {
        name: registry.has('scores', 'movement') ? 'movement-global' : 'magnitude-global-70',
        scores: registry.has('scores', 'movement') ? 'movement' : 'magnitude',
        scope: 'global',
        sparsity: 0.7,
      },
    ];
    const outputs: string[] = [];
    for (const variant of variants) {
      const recipe = validateRecipe(
        tinyRecipe({
          name: variant.name,
          model: { builtin: 'mlp-784-32-16-10' },
          training: {
            steps: 16,
            optimizer: { type: 'adam', learningRate: 0.01 },
            scoreOptimizer: { type: 'adam', learningRate: 0.05 },
            evaluateEvery: 4,
          },
          pruning: [
            {
              name: 'mlp',
              scores: { id: variant.scores },
              mask: { id: 'topV', options: { scope: variant.scope } },
              schedule: {
                id: 'cubic',
                options: {
                  finalSparsity: variant.sparsity,
                  totalSteps: 16,
                  warmupSteps: 4,
                  cooldownSteps: 4,
                  interval: 2,
                },
              },
            },
          ],
        }),
      );
      const outputDirectory = temporaryDirectory();
      const outcome = await runRecipe({
        recipe,
        baseDirectory: outputDirectory,
        registry,
        outputDirectory,
        dataset: mnist,
      });
      expect(outcome.status).toBe('completed');
      outputs.push(outputDirectory);
    }
    mkdirSync(OUTPUT, { recursive: true });
    const html = path.join(OUTPUT, 'report.html');
    const stdout = capture();
    const code = await main(['report', outputs[0]!, '--html', html, '--compare', ...outputs.slice(1)], {
      stdout,
      stderr: capture(),
    });
    expect(code).toBe(0);
    expect(stdout.text()).toMatch(/dense_1\/kernel/);

    const context = await chromium.launchPersistentContext(
      mkdtempSync(path.join(tmpdir(), 'fineprune-chromium-')),
      {
        executablePath: CHROMIUM,
        headless: true,
        viewport: { width: 1200, height: 900 },
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      },
    );
    try {
      const page = await context.newPage();
      const requests: string[] = [];
      page.on('request', (request) => {
        if (!request.url().startsWith('file:')) requests.push(request.url());
      });
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      await page.goto(pathToFileURL(html).href);
      const rendered = JSON.parse((await page.getAttribute('html', 'data-rendered')) ?? '{}') as Record<
        string,
        number
      >;
      const plots = await page.$$eval('svg[data-plot]', (nodes) =>
        nodes.map((node) => {
          const box = node.getBoundingClientRect();
          const marks = Array.from(node.querySelectorAll('.mark')).filter((mark) => {
            const markBox = mark.getBoundingClientRect();
            return markBox.width > 0 || markBox.height > 0;
          });
          return {
            plot: node.getAttribute('data-plot'),
            points: Number(node.getAttribute('data-points')),
            visibleMarks: marks.length,
            width: box.width,
            height: box.height,
          };
        }),
      );
      for (const id of PLOTS) {
        const found = plots.filter((plot) => plot.plot === id);
        expect(found.length, id).toBeGreaterThan(0);
        for (const plot of found) {
          expect(plot.points, id).toBeGreaterThan(0);
          expect(plot.visibleMarks, id).toBeGreaterThan(0);
          expect(plot.width * plot.height, id).toBeGreaterThan(10_000);
        }
        expect(rendered[id], id).toBeGreaterThan(0);
      }
      // Fig. 4b: pruned weights drawn in grey beside kept ones.
      expect(
        await page.$$eval('svg[data-plot="weights-vs-scores"] g.pruned circle', (nodes) => nodes.length),
      ).toBeGreaterThan(0);
      // Fig. 2 and Fig. 6 compare all three runs.
      expect(
        await page.$$eval('svg[data-plot="remaining-per-layer"] rect.mark', (nodes) => nodes.length),
      ).toBe(3 * 3);
      // The legend toggles a run's series.
      await page.click('button.legend-item[data-series="1"]');
      expect(await page.$$eval('.series-1.hidden-series', (nodes) => nodes.length)).toBeGreaterThan(0);
      await page.click('button.legend-item[data-series="1"]');
      expect(errors).toEqual([]);
      expect(requests).toEqual([]);
      await page.screenshot({ path: path.join(OUTPUT, 'report.png'), fullPage: true });
      expect(existsSync(path.join(OUTPUT, 'report.png'))).toBe(true);
    } finally {
      await context.close();
    }
  });
});
