import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import * as tfl from '@tensorflow/tfjs-layers';
import { fileSystem } from '@fineprune/layers';
import { setBackend } from '@fineprune/tensor';
import { afterAll, describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
/** tsx's loader, by absolute URL: the example runs in a temporary directory with no node_modules. */
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const README = fileURLToPath(new URL('../../../README.md', import.meta.url));
const directories: string[] = [];
afterAll(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

/** The TypeScript block under the README heading that starts with `heading`. */
function readmeBlock(heading: string): string {
  const text = readFileSync(README, 'utf8');
  const start = text.indexOf(`\n## ${heading}`);
  expect(start, `README heading "${heading}"`).toBeGreaterThan(0);
  const block = /```ts\n([\s\S]*?)```/.exec(text.slice(start));
  return block![1]!;
}

describe('the one-shot example of the README', () => {
  it('is the file this package runs, word for word', () => {
    expect(readmeBlock('Prune once, without training')).toBe(readFileSync(MAIN, 'utf8'));
  });

  it('runs: prunes 50% of the kernels globally, lists the biases left dense, saves a model stock TF.js loads', async () => {
    const directory = mkdtempSync(path.join(os.tmpdir(), 'fineprune-one-shot-'));
    directories.push(directory);
    // Rejects (and so fails the test, with the child's stderr) unless the example exits with 0.
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--conditions=source', '--import', TSX, MAIN],
      {
        cwd: directory,
      },
    );
    // 784·300 + 300·100 + 100·10 = 266,200 kernel weights; global Top-v keeps 266,200 − 133,100.
    expect(stdout).toContain('all kernels: 50.0% pruned, 133100 weights kept');
    expect(stdout).toMatch(
      /left dense: \S+\/bias \(weight-not-prunable\), \S+\/bias \(weight-not-prunable\), \S+\/bias \(weight-not-prunable\)\n/,
    );
    expect(stdout).toContain('saved the pruned model to ./mlp-pruned');

    await setBackend('cpu');
    const saved = await tfl.loadLayersModel(fileSystem(path.join(directory, 'mlp-pruned')));
    let kept = 0;
    for (const layer of saved.layers) {
      const [kernel] = layer.getWeights();
      kept += Array.from(await kernel!.data()).filter((value) => value !== 0).length;
    }
    expect(kept).toBe(133100);
    saved.dispose();
  });
});
