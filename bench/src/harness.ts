import { execSync } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerWebGPUBackend, webgpuSelection } from '@fineprune/backend-webgpu';
import { parseArgs } from 'node:util';
import { type BackendSelection, setBackend } from '@fineprune/tensor';

/** Where benchmark results are written: bench/results, or `$FINEPRUNE_BENCH_RESULTS` when set. */
export const RESULTS_DIR =
  process.env.FINEPRUNE_BENCH_RESULTS ??
  path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'results');

/**
 * `setBackend` of `@fineprune/tensor`, with the WebGPU provider registered first when `webgpu` or
 * `auto` is asked for (Dawn in Node: Vulkan on a machine with a GPU, else OpenGL on llvmpipe).
 */
export async function selectBackend(name: string): Promise<BackendSelection> {
  if (name === 'webgpu' || name === 'auto') registerWebGPUBackend();
  const selection = await setBackend(name);
  const adapter = webgpuSelection()?.adapter;
  if (selection.backend === 'webgpu' && adapter) console.log(`webgpu adapter: ${JSON.stringify(adapter)}`);
  return selection;
}

/** A description of the machine a benchmark ran on, stored with every result. */
export function machineDescription(): Record<string, unknown> {
  let osRelease = '';
  try {
    osRelease = execSync('. /etc/os-release && echo "$PRETTY_NAME"', { encoding: 'utf8' }).trim();
  } catch {
    osRelease = os.type();
  }
  const cpus = os.cpus();
  return {
    os: osRelease,
    kernel: os.release(),
    arch: os.arch(),
    cpuModel: cpus[0]?.model ?? 'unknown',
    logicalCores: cpus.length,
    totalMemoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    date: new Date().toISOString(),
  };
}

/**
 * How this process was started, stored with every result so that it can be run again: the script
 * and its arguments as typed, the working directory, the `FINEPRUNE_*` environment variables that
 * change what runs (threads, fused kernels, the sparse route), and the git commit (with `dirty` when
 * tracked files differ from it; absent where there is no repository, as with the bundle on another
 * machine).
 *
 * @example
 * ```ts
 * invocation(); // { script: 'src/movement-fashion.ts', arguments: ['--methods', 'SMvP'], cwd: '…/bench', commit: '…', dirty: false }
 * ```
 */
export function invocation(): Record<string, unknown> {
  const git = (command: string) => {
    try {
      return execSync(command, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return undefined;
    }
  };
  const commit = git('git rev-parse HEAD');
  const environment = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => name.startsWith('FINEPRUNE_')),
  );
  return {
    script: path.relative(process.cwd(), process.argv[1] ?? ''),
    arguments: process.argv.slice(2),
    ...(Object.keys(environment).length > 0 ? { environment } : {}),
    cwd: process.cwd(),
    ...(commit ? { commit, dirty: (git('git status --porcelain --untracked-files=no') ?? '') !== '' } : {}),
  };
}

/** Writes one benchmark's JSON result atomically (temporary file, then rename). */
export function writeResult(name: string, result: Record<string, unknown>): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${name}.json`);
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(
    temporary,
    `${JSON.stringify({ benchmark: name, machine: machineDescription(), command: invocation(), ...result }, null, 2)}\n`,
  );
  renameSync(temporary, file);
  return file;
}

/** Mean of a list of numbers. */
export function mean(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

/** Sample standard deviation (n − 1 in the denominator); 0 for fewer than two values. */
export function std(values: readonly number[]): number {
  if (values.length < 2) return 0;
  const average = mean(values);
  return Math.sqrt(values.reduce((sum, value) => sum + (value - average) ** 2, 0) / (values.length - 1));
}

/** Median of a list of numbers. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Runs `fn` `warmup` times untimed, then `repeats` times timed; returns the times in milliseconds. */
export async function timeRepeated(
  fn: () => unknown | Promise<unknown>,
  repeats: number,
  warmup = 2,
): Promise<number[]> {
  for (let index = 0; index < warmup; index += 1) await fn();
  const times: number[] = [];
  for (let index = 0; index < repeats; index += 1) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  return times;
}

/**
 * Times `a` and `b` alternately, `repeats` times each after `warmup` untimed rounds, so drifts in
 * the machine's load fall on both alike. Each call's tensors are disposed inside the call.
 */
export async function sideBySide(
  a: () => unknown,
  b: () => unknown,
  repeats: number,
): Promise<[number[], number[]]> {
  const timesA: number[] = [];
  const timesB: number[] = [];
  for (let round = 0; round < repeats + 10; round += 1) {
    const [first] = await timeRepeated(a, 1, 0);
    const [second] = await timeRepeated(b, 1, 0);
    if (round >= 10) {
      timesA.push(first!);
      timesB.push(second!);
    }
  }
  return [timesA, timesB];
}

/** Per-call times of one function over a block of calls: wall clock and this process's CPU time. */
export interface BlockTimes {
  /** Milliseconds of wall-clock time per call, one entry per block. */
  wall: number[];
  /** Milliseconds of CPU time (user + system) of this process per call, one entry per block. */
  cpu: number[];
}

/** Calls `fn` `calls` times; returns the wall-clock and CPU milliseconds per call. */
function timeBlock(fn: () => unknown, calls: number): [number, number] {
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  for (let call = 0; call < calls; call += 1) fn();
  const wall = performance.now() - start;
  const cpu = process.cpuUsage(cpuStart);
  return [wall / calls, (cpu.user + cpu.system) / 1000 / calls];
}

/**
 * Times the synchronous functions `a` and `b` in alternating blocks of calls, each block long
 * enough (about `blockMilliseconds` of CPU) for the CPU-time clock to resolve it. On a shared machine
 * the wall clock also counts the time the process waited for a core; its CPU time does not, so the
 * CPU time per call is the steadier measure of the work a call does, while the wall clock is what a
 * user waits. Both are returned. `warmupMilliseconds` of untimed calls come first (so WebAssembly
 * tier-up and caches settle).
 */
export function blocksSideBySide(
  a: () => unknown,
  b: () => unknown,
  blocks: number,
  blockMilliseconds = 4,
  warmupMilliseconds = 100,
): [BlockTimes, BlockTimes] {
  const callsFor = (fn: () => unknown): number => {
    const [, cpu] = timeBlock(fn, 3);
    return Math.max(1, Math.min(100_000, Math.round(blockMilliseconds / Math.max(cpu, 1e-4))));
  };
  for (const fn of [a, b]) {
    const start = performance.now();
    while (performance.now() - start < warmupMilliseconds) timeBlock(fn, 1);
  }
  const [callsA, callsB] = [callsFor(a), callsFor(b)];
  const times: [BlockTimes, BlockTimes] = [
    { wall: [], cpu: [] },
    { wall: [], cpu: [] },
  ];
  for (let block = 0; block < blocks; block += 1) {
    for (const [index, [fn, calls]] of (
      [
        [a, callsA],
        [b, callsB],
      ] as const
    ).entries()) {
      const [wall, cpu] = timeBlock(fn, calls);
      times[index]!.wall.push(wall);
      times[index]!.cpu.push(cpu);
    }
  }
  return times;
}

/**
 * The start of a wasm-only benchmark: reads `--repeats` (a positive integer, `defaultRepeats` when
 * absent) from `argv` and selects the wasm backend; throws when either fails.
 */
export async function startWasmBenchmark(argv: string[], defaultRepeats: number): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { repeats: { type: 'string', default: String(defaultRepeats) } },
  });
  const repeats = Number(values.repeats);
  if (!(Number.isInteger(repeats) && repeats > 0))
    throw new Error(`--repeats must be a positive integer, got ${values.repeats}`);
  const selection = await setBackend('wasm');
  if (selection.backend !== 'wasm') throw new Error('this benchmark needs the wasm backend');
  return repeats;
}

/**
 * Runs a benchmark's `main` when its file is the script Node was started with (not when another
 * script imports it); a failure is printed and sets a non-zero exit code.
 *
 * @example
 * runIfScript(import.meta.url, main);
 */
export function runIfScript(moduleUrl: string, main: () => Promise<unknown>): void {
  if (moduleUrl !== `file://${process.argv[1]}`) return;
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
