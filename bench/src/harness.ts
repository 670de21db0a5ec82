import { execSync } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerWebGPUBackend, webgpuSelection } from '@fineprune/backend-webgpu';
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
 * and its arguments as typed, the working directory, and the git commit (with `dirty` when tracked
 * files differ from it; absent where there is no repository, as with the bundle on another machine).
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
  return {
    script: path.relative(process.cwd(), process.argv[1] ?? ''),
    arguments: process.argv.slice(2),
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
