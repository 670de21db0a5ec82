import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The README's `ts` code blocks, in order. */
function examples(): string[] {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  return [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]!);
}

/** Runs a code block beside the package (so its imports resolve as a user's would) and returns its lines. */
function run(code: string): string[] {
  const script = path.join(root, `.readme-example-${process.pid}.ts`);
  writeFileSync(script, code);
  try {
    const output = execFileSync(
      process.execPath,
      ['--conditions=source', '--import', createRequire(import.meta.url).resolve('tsx'), script],
      { cwd: root, encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'ignore'] },
    );
    return output.trim().split('\n');
  } finally {
    rmSync(script, { force: true });
  }
}

describe('the README examples', () => {
  it('sparseDense: runs as written and prints the choice and an agreement with the dense product', () => {
    const lines = run(examples()[0]!);
    expect(lines[0]).toBe('23520 of 235200 weights kept');
    expect(lines[1]).toMatch(
      /^(sparse|dense) — sparse [\d.e-]+ ms vs dense [\d.e-]+ ms \((sparse|dense) [\d.]+× faster\) at batch 1 on wasm$/,
    );
    const difference = Number(/^max \|sparse − dense\| = (.+)$/.exec(lines[2]!)![1]);
    expect(difference).toBeLessThan(1e-5);
  });

  it('the compact export: at least 15× smaller in int8, delta layouts, the loaders agree', () => {
    const lines = run(examples().find((code) => code.includes('compactBytesOfModel'))!);
    const [, bytes, ratio] = /^(\d+) bytes, ([\d.]+)× smaller than float32$/.exec(lines[0]!)!;
    expect(Number(bytes)).toBeGreaterThan(0);
    expect(Number(ratio)).toBeGreaterThanOrEqual(15);
    expect(lines[1]).toMatch(/^dense_\w+\/kernel: delta int8, dense_\w+\/bias: vector float32, /);
    const difference = Number(/^max \|sparse − stock\| = (.+)$/.exec(lines[2]!)![1]);
    expect(difference).toBeLessThan(1e-5);
  });
});
