/**
 * The page of the Chromium test: runs the exactness suite (../kernel-suite.ts) on every backend the
 * browser offers among cpu, wasm and webgpu, and reports per backend whether it ran, why not, and
 * the worst scaled error and leaked tensors over the cases.
 */
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';
import { kernelCases, runCase, sparseProduct } from '../kernel-suite';

/** One backend's outcome. */
export interface BackendReport {
  ran: boolean;
  /** webgpu: the adapter's self-description, as tfjs-backend-webgpu records it. */
  adapter?: string;
  reason?: string;
  cases: number;
  worstError: number;
  leaked: number;
  wrongShapes: number;
}

declare global {
  interface Window {
    sparseReport?: Record<string, BackendReport>;
    sparseError?: string;
  }
}

setWasmPaths(new URL('./', window.location.href).href);

async function runBackend(name: string): Promise<BackendReport> {
  const report: BackendReport = { ran: false, cases: 0, worstError: 0, leaked: 0, wrongShapes: 0 };
  try {
    if (!(await tf.setBackend(name))) return { ...report, reason: `tf.setBackend('${name}') returned false` };
  } catch (error) {
    return { ...report, reason: error instanceof Error ? error.message : String(error) };
  }
  for (const testCase of kernelCases([1, 3, 8, 33])) {
    await tf.setBackend(name);
    const { error, leaked, shape } = await runCase(testCase, sparseProduct(testCase));
    report.cases += 1;
    report.worstError = Math.max(report.worstError, error);
    report.leaked += leaked;
    if (shape[0] !== testCase.batch || shape[1] !== testCase.outputSize) report.wrongShapes += 1;
  }
  const adapter = (tf.backend() as { adapterInfo?: unknown }).adapterInfo;
  return {
    ...report,
    ran: tf.getBackend() === name,
    ...(adapter ? { adapter: JSON.stringify(adapter) } : {}),
  };
}

async function main(): Promise<Record<string, BackendReport>> {
  const reports: Record<string, BackendReport> = {};
  for (const name of ['cpu', 'wasm', 'webgpu']) reports[name] = await runBackend(name);
  return reports;
}

main().then(
  (reports) => {
    window.sparseReport = reports;
  },
  (error: unknown) => {
    window.sparseError = error instanceof Error ? (error.stack ?? error.message) : String(error);
  },
);
