/** The browser page: points the wasm backend at its binaries (served beside the page) and runs the example. */
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { type PruneReport, prune } from './prune';

declare global {
  interface Window {
    pruneReport?: PruneReport;
    pruneError?: string;
  }
}

const output = document.getElementById('backend')!;
const logElement = document.getElementById('log')!;
const log = (line: string) => {
  logElement.textContent += `${line}\n`;
};

// The .wasm files are copied next to page.js by the build: no CDN.
setWasmPaths(new URL('./', window.location.href).href);

prune(log).then(
  (report) => {
    output.textContent = report.backend;
    log(JSON.stringify(report, null, 2));
    window.pruneReport = report;
  },
  (error: unknown) => {
    window.pruneError = error instanceof Error ? (error.stack ?? error.message) : String(error);
    log(`failed: ${window.pruneError}`);
  },
);
