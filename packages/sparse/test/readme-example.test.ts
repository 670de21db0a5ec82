import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

describe('the README example', () => {
  it('runs as written and prints the choice and an agreement with the dense product', () => {
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    const code = /```ts\n([\s\S]*?)```/.exec(readme)![1]!;
    // Beside the package so that its imports resolve as a user's would (through the workspace).
    const script = path.join(root, `.readme-example-${process.pid}.ts`);
    writeFileSync(script, code);
    try {
      const output = execFileSync(
        process.execPath,
        ['--conditions=source', '--import', createRequire(import.meta.url).resolve('tsx'), script],
        { cwd: root, encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'ignore'] },
      );
      const lines = output.trim().split('\n');
      expect(lines[0]).toBe('23520 of 235200 weights kept');
      expect(lines[1]).toMatch(
        /^(sparse|dense) — sparse [\d.e-]+ ms vs dense [\d.e-]+ ms \((sparse|dense) [\d.]+× faster\) at batch 1 on wasm$/,
      );
      const difference = Number(/^max \|sparse − dense\| = (.+)$/.exec(lines[2]!)![1]);
      expect(difference).toBeLessThan(1e-5);
    } finally {
      rmSync(script, { force: true });
    }
  });
});
