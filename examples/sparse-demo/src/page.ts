/**
 * The demo page, bundled from the INSTALLED packages (see test/demo.test.ts): for the MNIST MLP and
 * for the encoder, the dense export and the compact sparse exports of the same pruned model are
 * downloaded, loaded and run on wasm (and the MLP on WebGPU where the browser offers it); the page shows
 * download size, latency at batch 1 and 16, and agreement, and leaves the numbers on
 * `window.demoReport`.
 */
import { disposeWebGPU, registerWebGPUBackend, webgpuSelection } from '@fineprune/backend-webgpu';
import { readSafetensors } from '@fineprune/safetensors';
import { loadSparseLayersModel, readCompactModel } from '@fineprune/sparse';
import { setBackend } from '@fineprune/tensor';
import { configFromHuggingFace, createBertModel, loadHuggingFaceWeights } from '@fineprune/transformers';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { loadSparseBert } from './encoder-compact';

/** One row of the page's tables. */
export interface DemoRow {
  backend: string;
  model: 'mlp' | 'encoder';
  variant: string;
  downloadBytes: number;
  /** Median milliseconds per call, by batch size. */
  latency: Record<'1' | '16', number>;
  /** Max |y − y_dense| / max |y_dense| at batch 16 (0 for the dense row). */
  relativeDifference: number;
  /** Predicted classes equal to the dense model's, of 16. */
  agreeing: number;
  /** Matrices the sparse kernels ran, of all pruned matrices (sparse rows). */
  sparseMatrices?: string;
}

/** What the page reports. */
export interface DemoReport {
  rows: DemoRow[];
  webgpu: { ran: true; adapter: string } | { ran: false; reason: string };
}

declare global {
  interface Window {
    demoReport?: DemoReport;
    demoError?: string;
  }
}

interface Inputs {
  digits: number[];
  ids: number[][];
  masks: number[][];
}

const status = (text: string) => {
  document.querySelector('#status')!.textContent = text;
};

/** fetch, counting the bytes of every response. */
function countingFetch() {
  let bytes = 0;
  const fetchFunction = async (input: RequestInfo | URL, init?: RequestInit) => {
    const response = await fetch(input, init);
    bytes += (await response.clone().arrayBuffer()).byteLength;
    return response;
  };
  return { fetchFunction, bytes: () => bytes };
}

async function download(url: string): Promise<Uint8Array> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

/** Milliseconds of one call that awaits its result. */
async function timeCall(run: () => tf.Tensor): Promise<number> {
  const started = performance.now();
  const y = run();
  await y.data();
  y.dispose();
  return performance.now() - started;
}

/**
 * Median milliseconds per call over `repeats` blocks, each of enough calls to last about 20 ms
 * (browsers round performance.now() to 0.1 ms or coarser), after at least 300 ms of untimed calls
 * (WebAssembly tier-up, the first-call choice of sparse or dense).
 */
async function medianMs(run: () => tf.Tensor, repeats: number): Promise<number> {
  let warm = 0;
  let calls = 0;
  while (calls < 3 || warm < 300) {
    warm += await timeCall(run);
    calls += 1;
  }
  const perBlock = Math.max(1, Math.ceil(20 / Math.max(warm / calls, 1e-3)));
  const times: number[] = [];
  for (let block = 0; block < repeats; block += 1) {
    let total = 0;
    for (let call = 0; call < perBlock; call += 1) total += await timeCall(run);
    times.push(total / perBlock);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

async function compare(
  y: tf.Tensor,
  dense: tf.Tensor,
): Promise<{ relativeDifference: number; agreeing: number }> {
  const [a, b] = [await y.data(), await dense.data()];
  const width = y.shape.at(-1)!;
  let scale = 0;
  let worst = 0;
  let agreeing = 0;
  for (const value of b) scale = Math.max(scale, Math.abs(value));
  for (let row = 0; row < a.length / width; row += 1) {
    let [bestA, bestB] = [0, 0];
    for (let column = 0; column < width; column += 1) {
      const at = row * width + column;
      worst = Math.max(worst, Math.abs(a[at]! - b[at]!));
      if (a[at]! > a[row * width + bestA]!) bestA = column;
      if (b[at]! > b[row * width + bestB]!) bestB = column;
    }
    if (bestA === bestB) agreeing += 1;
  }
  return { relativeDifference: worst / scale, agreeing };
}

/** A model variant as the page runs it. */
interface Variant {
  name: string;
  downloadBytes: number;
  run(batch: 1 | 16): tf.Tensor;
  sparseMatrices?(): string;
  dispose(): void;
}

async function measureVariants(
  backend: string,
  model: DemoRow['model'],
  variants: Variant[],
  repeats: number,
): Promise<DemoRow[]> {
  const rows: DemoRow[] = [];
  const reference = variants[0]!.run(16);
  for (const variant of variants) {
    status(`${backend}: timing ${model} ${variant.name}…`);
    const latency = {
      '1': await medianMs(() => variant.run(1), repeats),
      '16': await medianMs(() => variant.run(16), repeats),
    };
    const y = variant.run(16);
    rows.push({
      backend,
      model,
      variant: variant.name,
      downloadBytes: variant.downloadBytes,
      latency,
      ...(await compare(y, reference)),
      ...(variant.sparseMatrices ? { sparseMatrices: variant.sparseMatrices() } : {}),
    });
    y.dispose();
  }
  reference.dispose();
  for (const variant of variants) variant.dispose();
  return rows;
}

async function mlpVariants(inputs: Inputs): Promise<Variant[]> {
  const images = tf.tensor2d(inputs.digits, [16, 784]);
  const first = tf.slice(images, [0, 0], [1, 784]);
  const pick = (batch: 1 | 16) => (batch === 1 ? first : images);
  const counter = countingFetch();
  const dense = await tfl.loadLayersModel(
    tf.io.http('models/mlp/model.json', { fetchFunc: counter.fetchFunction }),
  );
  const variants: Variant[] = [
    {
      name: 'dense float32 (TF.js)',
      downloadBytes: counter.bytes(),
      run: (batch) => dense.predict(pick(batch)) as tf.Tensor,
      dispose: () => dense.dispose(),
    },
  ];
  for (const values of ['float32', 'int8']) {
    const bytes = await download(`models/mlp/${values}.fpsparse`);
    // 'auto': on wasm the first call per batch size times sparse against dense and keeps the faster;
    // on WebGPU (no synchronous reads) the choice is by density until calibrate() is awaited.
    const sparse = await loadSparseLayersModel(bytes, { source: `mlp/${values}.fpsparse` });
    variants.push({
      name: `compact ${values} (sparse kernels)`,
      downloadBytes: bytes.length,
      run: (batch) => sparse.predict(pick(batch)),
      sparseMatrices: () => {
        const layers = sparse.denseLayers();
        const picked = layers.filter((layer) => layer.choices.some((choice) => choice.path === 'sparse'));
        return `${picked.length} of ${layers.length}`;
      },
      dispose: () => sparse.dispose(),
    });
  }
  const last = variants.at(-1)!;
  const dispose = last.dispose;
  last.dispose = () => {
    dispose();
    tf.dispose([images, first]);
  };
  return variants;
}

async function encoderVariants(inputs: Inputs): Promise<Variant[]> {
  const task = { type: 'classification', numLabels: 2 } as const;
  const batchOf = (batch: 1 | 16) => ({
    inputIds: tf.tensor2d(inputs.ids.slice(0, batch), undefined, 'int32'),
    attentionMask: tf.tensor2d(inputs.masks.slice(0, batch), undefined, 'int32'),
  });
  const batches = { 1: batchOf(1), 16: batchOf(16) };
  const [configBytes, weights] = [
    await download('models/encoder/config.json'),
    await download('models/encoder/model.safetensors'),
  ];
  const config = configFromHuggingFace(JSON.parse(new TextDecoder().decode(configBytes)));
  const dense = createBertModel({ config, task });
  loadHuggingFaceWeights(dense, readSafetensors(weights));
  const variants: Variant[] = [
    {
      name: 'dense float32 (safetensors)',
      downloadBytes: configBytes.length + weights.length,
      run: (batch) => dense.forward(batches[batch], { training: false }) as tf.Tensor,
      dispose: () => dense.dispose(),
    },
  ];
  for (const values of ['float32', 'int8']) {
    const bytes = await download(`models/encoder/${values}.fpsparse`);
    const bert = loadSparseBert(
      await readCompactModel(bytes, { source: `encoder/${values}.fpsparse` }),
      task,
    );
    variants.push({
      name: `compact ${values} (sparse kernels)`,
      downloadBytes: bytes.length,
      run: (batch) => bert.model.forward(batches[batch], { training: false }) as tf.Tensor,
      sparseMatrices: () => {
        const all = [...bert.weights.values()];
        const picked = all.filter((prepared) =>
          prepared.choices().some((choice) => choice.path === 'sparse'),
        );
        return `${picked.length} of ${all.length}`;
      },
      dispose: () => bert.dispose(),
    });
  }
  const last = variants.at(-1)!;
  const dispose = last.dispose;
  last.dispose = () => {
    dispose();
    tf.dispose([...Object.values(batches[1]), ...Object.values(batches[16])]);
  };
  return variants;
}

function renderTables(report: DemoReport): void {
  const container = document.querySelector('#tables')!;
  container.innerHTML = '';
  const keys = [...new Set(report.rows.map((row) => `${row.backend}|${row.model}`))];
  for (const key of keys) {
    const [backend, model] = key.split('|');
    const rows = report.rows.filter((row) => `${row.backend}|${row.model}` === key);
    const heading = document.createElement('h2');
    heading.textContent = `${model === 'mlp' ? 'MNIST MLP 784-300-100-10' : 'Encoder (BERT-Tiny shape), classification'} — ${backend}`;
    heading.style.fontSize = '16px';
    const table = document.createElement('table');
    const base = rows[0]!;
    table.innerHTML = `<tr><th>export</th><th>runs as</th><th>download</th><th>× smaller</th><th>batch 1</th><th>batch 16</th><th>speed-up b1 / b16</th><th>max rel. diff</th><th>same class</th><th>sparse matrices</th></tr>${rows
      .map(
        (row) =>
          `<tr class="${row === base ? 'dense' : ''}"><td>${row.variant.split(' (')[0]}</td><td>${row.variant.split(' (')[1]?.replace(')', '') ?? ''}</td><td>${(row.downloadBytes / 1e6).toFixed(3)} MB</td><td class="${row === base ? '' : 'good'}">${(base.downloadBytes / row.downloadBytes).toFixed(1)}×</td><td>${row.latency['1'].toFixed(2)} ms</td><td>${row.latency['16'].toFixed(2)} ms</td><td>${(base.latency['1'] / row.latency['1']).toFixed(2)}× / ${(base.latency['16'] / row.latency['16']).toFixed(2)}×</td><td>${row.relativeDifference.toExponential(1)}</td><td>${row.agreeing}/16</td><td>${row.sparseMatrices ?? '—'}</td></tr>`,
      )
      .join('')}`;
    container.append(heading, table);
  }
  const note = document.createElement('p');
  note.className = 'note';
  note.textContent = report.webgpu.ran
    ? `WebGPU ran on ${report.webgpu.adapter} (the MLP only: on a software adapter the encoder takes seconds per call).`
    : `WebGPU was not offered here (${report.webgpu.reason.split('\n')[0]}); wasm only.`;
  container.append(note);
}

/** The MLP, and on wasm the encoder too (on a software WebGPU adapter it takes seconds per call). */
async function runOn(backend: string, inputs: Inputs, repeats: number, encoder: boolean): Promise<DemoRow[]> {
  status(`${backend}: loading the MLP…`);
  const rows = await measureVariants(backend, 'mlp', await mlpVariants(inputs), repeats);
  if (encoder) {
    status(`${backend}: loading the encoder…`);
    rows.push(...(await measureVariants(backend, 'encoder', await encoderVariants(inputs), repeats)));
  }
  return rows;
}

async function main(): Promise<DemoReport> {
  setWasmPaths(new URL('./', window.location.href).href);
  const inputs = (await (await fetch('models/inputs.json')).json()) as Inputs;
  const rows: DemoRow[] = [];
  let webgpu: DemoReport['webgpu'];
  registerWebGPUBackend();
  try {
    await setBackend('webgpu');
    const adapter = webgpuSelection()?.adapter;
    webgpu = {
      ran: true,
      adapter:
        [adapter?.vendor, adapter?.architecture, adapter?.description].filter(Boolean).join(' ') ||
        'an adapter that names nothing',
    };
    rows.push(...(await runOn('webgpu', inputs, 3, false)));
    await disposeWebGPU();
  } catch (error) {
    webgpu = { ran: false, reason: error instanceof Error ? error.message : String(error) };
  }
  await setBackend('wasm');
  rows.push(...(await runOn('wasm', inputs, 9, true)));
  const report = { rows, webgpu };
  renderTables(report);
  status('done');
  return report;
}

main().then(
  (report) => {
    window.demoReport = report;
  },
  (error: unknown) => {
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    status(`failed: ${message}`);
    window.demoError = message;
  },
);
