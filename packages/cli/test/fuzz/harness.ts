/**
 * Runs fuzz cases in child processes under a memory cap and a per-case timeout: each child gets a
 * V8 heap limit (`--max-old-space-size`), the harness samples its resident memory (Linux
 * `/proc/<pid>/status`) every few milliseconds and kills it past `rssLimitBytes`, and kills it when
 * one case runs longer than `caseTimeoutMs` (a hang). Cases run one after another in a child; a
 * killed child is replaced and the remaining cases go on in the new one.
 */

import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { CaseResult, ChildResult, FuzzCase } from './protocol';

/** Limits of {@link runCases}. */
export interface HarnessLimits {
  /** V8 old-space limit of each child, in MiB. */
  heapMegabytes: number;
  /** Resident memory at which a child is killed and its case fails, in bytes. */
  rssLimitBytes: number;
  /** Longest a case may run before it counts as a hang, in milliseconds. */
  caseTimeoutMs: number;
  /** Longest a child may take to start (import TF.js and the packages), in milliseconds. */
  startTimeoutMs: number;
  /** Most cases one child runs before it is replaced by a fresh one. */
  casesPerChild: number;
}

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url));
const CLI_PACKAGE = fileURLToPath(new URL('../..', import.meta.url));
const SAMPLE_MS = 5;

/** The resident memory of a process in bytes, or 0 where /proc is unavailable. */
function residentBytes(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function start(limits: HarnessLimits): Promise<ChildProcess> {
  const child = fork(CHILD, [], {
    cwd: CLI_PACKAGE,
    execArgv: ['--import', 'tsx', '--conditions=source', `--max-old-space-size=${limits.heapMegabytes}`],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = `${stderr}${chunk.toString()}`.slice(-4000);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`a fuzz child did not start within ${limits.startTimeoutMs} ms: ${stderr}`));
    }, limits.startTimeoutMs);
    child.once('message', () => {
      clearTimeout(timer);
      resolve(child);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`a fuzz child exited with ${code} while starting: ${stderr}`));
    });
  });
}

/** Runs one case in `child`; resolves with its result, killing the child on a hang or past the memory limit. */
function runOne(child: ChildProcess, fuzzCase: FuzzCase, limits: HarnessLimits): Promise<CaseResult> {
  return new Promise((resolve) => {
    let sampledPeakBytes = residentBytes(child.pid!);
    const finish = (result: Omit<CaseResult, 'sampledPeakBytes'>) => {
      clearInterval(sampler);
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve({ ...result, sampledPeakBytes });
    };
    const killed = (outcome: 'timeout' | 'memory', message: string) => {
      child.kill('SIGKILL');
      finish({
        id: fuzzCase.id,
        outcome,
        code: outcome.toUpperCase(),
        message,
        messageLength: 0,
        maxRssBytes: sampledPeakBytes,
      });
    };
    const sampler = setInterval(() => {
      sampledPeakBytes = Math.max(sampledPeakBytes, residentBytes(child.pid!));
      if (sampledPeakBytes > limits.rssLimitBytes)
        killed(
          'memory',
          `resident memory reached ${sampledPeakBytes} bytes, past the limit of ${limits.rssLimitBytes}`,
        );
    }, SAMPLE_MS);
    const timer = setTimeout(
      () => killed('timeout', `no answer within ${limits.caseTimeoutMs} ms (a hang)`),
      limits.caseTimeoutMs,
    );
    const onMessage = (message: ChildResult) => {
      sampledPeakBytes = Math.max(sampledPeakBytes, residentBytes(child.pid!));
      finish(message);
    };
    const onExit = (code: number | null, signal: string | null) =>
      finish({
        id: fuzzCase.id,
        outcome: 'crashed',
        code: 'CRASHED',
        message: `the child exited (code ${code}, signal ${signal}): V8 heap exhausted or a fatal error`,
        messageLength: 0,
        maxRssBytes: sampledPeakBytes,
      });
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.send(fuzzCase);
  });
}

/**
 * Runs every case and returns one result per case, in order. Cases marked `isolate` get a child
 * of their own; the others share children, `casesPerChild` at a time.
 */
export async function runCases(cases: readonly FuzzCase[], limits: HarnessLimits): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  let child: ChildProcess | undefined;
  let used = 0;
  const retire = () => {
    child?.kill('SIGKILL');
    child = undefined;
  };
  try {
    for (const fuzzCase of cases) {
      if (child && (fuzzCase.isolate || used >= limits.casesPerChild || child.exitCode !== null)) retire();
      if (!child) {
        child = await start(limits);
        used = 0;
      }
      used += 1;
      const result = await runOne(child, fuzzCase, limits);
      results.push(result);
      if (
        result.outcome === 'timeout' ||
        result.outcome === 'memory' ||
        result.outcome === 'crashed' ||
        fuzzCase.isolate
      )
        retire();
    }
  } finally {
    retire();
  }
  return results;
}
