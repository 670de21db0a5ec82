/**
 * Issue 19's encoder target, "≥ 3× today's tokens/s": the dense fine-tuning step of the benchmark
 * encoder (src/encoder-dense-step.ts) in this checkout on 1 and N wasm threads, against the same
 * step in a checkout of the commit before issue 19 (`--baseline DIR`, a worktree with its packages
 * installed: `git worktree add --detach DIR cc996a4 && (cd DIR && pnpm install --offline)`). Each
 * configuration runs in a child process of its own and the children alternate, rotating the order
 * every round, so the three share the machine's noise. The child file is copied into the baseline's
 * bench/src (it uses only APIs the baseline has). Writes results/encoder-speedup.json.
 *
 *   cd bench && npx tsx --conditions=source src/encoder-speedup.ts --baseline /work/base19 [--rounds 3] [--threads 2] [--steps 8]
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median, runIfScript, writeResult } from './harness';

interface ChildResult {
  threads: number;
  medianMs: number;
  medianCpuMs: number;
  tokensPerSecond: number;
  tensorsLeaked: number;
}

const CHILD = 'encoder-dense-step.ts';

function runChild(benchDir: string, threads: number, steps: number): Promise<ChildResult> {
  const args = [
    'tsx',
    '--conditions=source',
    join('src', CHILD),
    '--threads',
    String(threads),
    '--steps',
    String(steps),
  ];
  return new Promise((resolve, reject) => {
    execFile('npx', args, { cwd: benchDir, maxBuffer: 1 << 24 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`${benchDir}: ${error.message}\n${stderr}`));
      const line = stdout
        .trim()
        .split('\n')
        .filter((text) => text.startsWith('{'))
        .pop();
      if (line === undefined) return reject(new Error(`${benchDir}: no result line\n${stdout}\n${stderr}`));
      resolve(JSON.parse(line) as ChildResult);
    });
  });
}

export async function main(argv = process.argv.slice(2)): Promise<Record<string, unknown>> {
  const { values } = parseArgs({
    args: argv,
    options: {
      baseline: { type: 'string' },
      rounds: { type: 'string', default: '3' },
      threads: { type: 'string', default: '2' },
      steps: { type: 'string', default: '8' },
    },
  });
  if (values.baseline === undefined || !existsSync(join(values.baseline, 'bench')))
    throw new Error(
      '--baseline must name a checkout of the commit to compare with (its bench/ folder is missing).',
    );
  const here = join(fileURLToPath(new URL('.', import.meta.url)), '..');
  const baselineBench = join(values.baseline, 'bench');
  copyFileSync(join(here, 'src', CHILD), join(baselineBench, 'src', CHILD));
  const threads = Number(values.threads);
  const steps = Number(values.steps);
  const configurations = [
    { name: 'baseline, 1 thread', dir: baselineBench, threads: 1 },
    { name: 'now, 1 thread', dir: here, threads: 1 },
    { name: `now, ${threads} threads`, dir: here, threads },
  ];
  const runs: Record<string, ChildResult[]> = Object.fromEntries(
    configurations.map(({ name }) => [name, []]),
  );
  const loadBefore = loadavg();
  for (let round = 0; round < Number(values.rounds); round += 1) {
    for (let offset = 0; offset < configurations.length; offset += 1) {
      const configuration = configurations[(round + offset) % configurations.length]!;
      const result = await runChild(configuration.dir, configuration.threads, steps);
      runs[configuration.name]!.push(result);
      console.log(
        `round ${round + 1}: ${configuration.name}: ${result.medianMs.toFixed(0)} ms, ${result.tokensPerSecond.toFixed(0)} tokens/s`,
      );
    }
  }
  const summary = Object.fromEntries(
    Object.entries(runs).map(([name, results]) => {
      const ms = median(results.map((r) => r.medianMs));
      return [
        name,
        {
          medianMs: Math.round(ms),
          medianCpuMs: Math.round(median(results.map((r) => r.medianCpuMs))),
          tokensPerSecond: Math.round((16 * 128 * 1000) / ms),
          tensorsLeaked: Math.max(...results.map((r) => r.tensorsLeaked)),
          children: results.map((r) => Math.round(r.medianMs)),
        },
      ];
    }),
  );
  const base = (summary['baseline, 1 thread'] as { medianMs: number }).medianMs;
  const speedUp = Object.fromEntries(
    Object.entries(summary).map(([name, row]) => [
      name,
      Math.round((base / (row as { medianMs: number }).medianMs) * 100) / 100,
    ]),
  );
  const result = {
    benchmark: 'encoder-speedup',
    method:
      'Dense fine-tuning step of the benchmark encoder (16 × 128 Brown tokens), each configuration in its own child process, ' +
      `alternating with the order rotated every round; per child the median of ${steps} steps after 2 warm-ups; ` +
      'reported: the median over the children, and the speed-up against the baseline checkout.',
    baseline: values.baseline,
    rounds: Number(values.rounds),
    loadAverageBefore: loadBefore,
    loadAverageAfter: loadavg(),
    summary,
    speedUp,
  };
  console.log(JSON.stringify({ summary, speedUp }, null, 2));
  writeResult('encoder-speedup', result);
  return result;
}

runIfScript(import.meta.url, main);
