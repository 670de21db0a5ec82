/**
 * The browser page, bundled by the test from the INSTALLED tarballs (esbuild, --platform=browser, no
 * `source` condition): runs the prunings of ./pruning on WebGPU when this Chromium offers an adapter,
 * then always on wasm, and leaves the report on `window.packedReport`.
 */
import { disposeWebGPU, registerWebGPUBackend, webgpuSelection } from '@fineprune/backend-webgpu';
import { setBackend } from '@fineprune/tensor';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { type PruningReport, runPruning } from './pruning';

/** What the page reports. */
export interface PageReport {
  runs: PruningReport[];
  /** The adapter WebGPU ran on, or why WebGPU did not run. */
  webgpu: { ran: true; adapter: string } | { ran: false; reason: string };
}

declare global {
  interface Window {
    packedReport?: PageReport;
    packedError?: string;
  }
}

function message(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

async function main(): Promise<PageReport> {
  // The .wasm files are served beside the page: no CDN.
  setWasmPaths(new URL('./', window.location.href).href);
  const runs: PruningReport[] = [];
  let webgpu: PageReport['webgpu'];
  registerWebGPUBackend();
  try {
    await setBackend('webgpu');
    const adapter = webgpuSelection()?.adapter;
    const words = [adapter?.vendor, adapter?.architecture, adapter?.description].filter(Boolean);
    webgpu = { ran: true, adapter: words.join(' ') || 'an adapter that names nothing' };
    runs.push(await runPruning());
    await disposeWebGPU();
  } catch (error) {
    webgpu = { ran: false, reason: message(error) };
  }
  await setBackend('wasm');
  runs.push(await runPruning());
  return { runs, webgpu };
}

main().then(
  (report) => {
    window.packedReport = report;
  },
  (error: unknown) => {
    window.packedError = message(error);
  },
);
