/**
 * Issue 19's target "MvP step ≤ PyTorch's naive MvP step", measured in alternation: each round runs
 * PyTorch (python/mlp_step_torch.py, its dense and naive MvP steps), fineprune on 2 wasm threads
 * (src/movement-step.ts, dense and MvP local), PyTorch again, then fineprune on 1 thread, each in a
 * child process of its own. A fineprune run is compared with the mean of the PyTorch runs just
 * before and just after it, so both sides share the machine's noise of that minute. PyTorch runs with
 * its own default thread count here (`torch.get_num_threads()`, recorded). Writes
 * results/mvp-against-torch.json; needs /usr/bin/python3 with torch (Debian's python3-torch), not run
 * by CI.
 *
 *   cd bench && npx tsx --conditions=source src/mvp-against-torch.ts [--rounds 8] [--steps 300]
 */
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { median, runIfScript, writeResult } from './harness';

const run = promisify(execFile);
const benchDir = fileURLToPath(new URL('..', import.meta.url));

interface StepPair {
  denseMs: number;
  mvpMs: number;
}

async function torchRun(steps: number): Promise<StepPair & { threads: number }> {
  const output = join(tmpdir(), `fineprune-mvp-against-torch-${process.pid}.json`);
  try {
    await run(
      '/usr/bin/python3',
      ['python/mlp_step_torch.py', '--steps', String(steps), '--variants', 'dense,mvp', '--output', output],
      { cwd: benchDir, maxBuffer: 1 << 24 },
    );
    const result = JSON.parse(readFileSync(output, 'utf8'));
    return {
      denseMs: result.variants.dense.medianMs,
      mvpMs: result.variants.mvp.medianMs,
      threads: result.threads,
    };
  } finally {
    rmSync(output, { force: true });
  }
}

async function finepruneRun(steps: number, threads: number): Promise<StepPair> {
  const { stdout } = await run(
    'npx',
    [
      'tsx',
      '--conditions=source',
      'src/movement-step.ts',
      '--steps',
      String(steps),
      '--variants',
      'mvpLocal',
    ],
    { cwd: benchDir, maxBuffer: 1 << 26, env: { ...process.env, FINEPRUNE_WASM_THREADS: String(threads) } },
  );
  // the child prints its result as JSON, then "written to …"
  const json = stdout.slice(stdout.indexOf('{'), stdout.lastIndexOf('}') + 1);
  const result = JSON.parse(json);
  return { denseMs: result.variants.dense.medianMs, mvpMs: result.variants.mvpLocal.medianMs };
}

const round3 = (value: number) => Math.round(value * 1000) / 1000;

export async function main(argv = process.argv.slice(2)): Promise<Record<string, unknown>> {
  const { values } = parseArgs({
    args: argv,
    options: { rounds: { type: 'string', default: '8' }, steps: { type: 'string', default: '300' } },
  });
  const rounds = Number(values.rounds);
  const steps = Number(values.steps);
  const torchRuns: Array<StepPair & { threads: number }> = [];
  const fineprune: Array<{ threads: number; round: number; run: StepPair }> = [];
  const loads: number[] = [];
  for (let round = 0; round < rounds; round += 1) {
    torchRuns.push(await torchRun(steps));
    fineprune.push({ threads: 2, round, run: await finepruneRun(steps, 2) });
    torchRuns.push(await torchRun(steps));
    fineprune.push({ threads: 1, round, run: await finepruneRun(steps, 1) });
    loads.push(loadavg()[0]!);
    console.log(`round ${round + 1}/${rounds} done, load ${loadavg()[0]!.toFixed(2)}`);
  }
  torchRuns.push(await torchRun(steps));
  // fineprune run i (0-based, in order) sits between PyTorch runs i and i + 1
  const rows = fineprune.map(({ threads, round, run: step }, index) => {
    const before = torchRuns[index]!;
    const after = torchRuns[index + 1]!;
    const torchMvpMs = (before.mvpMs + after.mvpMs) / 2;
    const torchDenseMs = (before.denseMs + after.denseMs) / 2;
    return {
      round: round + 1,
      threads,
      fineprune: {
        denseMs: step.denseMs,
        mvpMs: step.mvpMs,
        mvpOverDense: round3(step.mvpMs / step.denseMs),
      },
      torch: { denseMs: round3(torchDenseMs), mvpMs: round3(torchMvpMs) },
      mvpOverTorchMvp: round3(step.mvpMs / torchMvpMs),
      denseOverTorchDense: round3(step.denseMs / torchDenseMs),
    };
  });
  const summary = (threads: number) => {
    const mine = rows.filter((row) => row.threads === threads);
    const ratios = mine.map((row) => row.mvpOverTorchMvp);
    const dense = mine.map((row) => row.denseOverTorchDense);
    return {
      mvpOverTorchMvp: { median: round3(median(ratios)), min: Math.min(...ratios), max: Math.max(...ratios) },
      denseOverTorchDense: {
        median: round3(median(dense)),
        min: Math.min(...dense),
        max: Math.max(...dense),
      },
      meetsMvpTarget: median(ratios) <= 1,
    };
  };
  const result = {
    rounds,
    steps,
    torchThreads: torchRuns[0]!.threads,
    what: 'median ms per training step of the 784-300-100-10 MLP at batch 100 (dense; MvP local Top-v at 90% sparsity, masks every step), fineprune on wasm against PyTorch naive MvP (kthvalue every step), in alternating child processes',
    target: 'MvP step ≤ PyTorch naive MvP step (issue 19)',
    summary: { twoThreads: summary(2), oneThread: summary(1) },
    loadAverages: loads.map((load) => Math.round(load * 100) / 100),
    torchRuns,
    rows,
  };
  const file = writeResult('mvp-against-torch', result);
  console.log(JSON.stringify(result.summary, null, 2));
  console.log(`written to ${file}`);
  return result;
}

runIfScript(import.meta.url, main);
