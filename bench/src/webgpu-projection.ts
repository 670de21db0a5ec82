/**
 * Milliseconds of one masked projection y = act(x·(W ⊙ M) + b) on WebGPU, forward and forward +
 * backward, at the encoder's shapes (16 × 128 tokens: 2048×128·128×512 with GELU, the FFN's first
 * projection; 2048×512·512×128 linear, its second): `@fineprune/backend-webgpu`'s tiled program
 * (one dispatch forward, three backward) against TF.js's op chain (Multiply, then TF.js's fused
 * matMul with the bias, then GELU; its backward), and TF.js's own matMul with the bias on the
 * unmasked W as the reference a product program should be near. All variants interleaved in one
 * process, the dispatches of each counted. On a machine without a GPU Dawn runs on Mesa's llvmpipe:
 * software rendering on the CPU cores, not a GPU figure. Writes results/webgpu-projection[-<label>].json.
 *
 *   cd bench && nice -n 10 npx tsx --conditions=source src/webgpu-projection.ts [--repeats 7] [--label …]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import {
  countWebGPUWork,
  disposeWebGPU,
  registerFusedWebGPUKernels,
  webgpuSelection,
} from '@fineprune/backend-webgpu';
import { FUSED_KERNELS, type MaskedDenseActivation, maskedDense } from '@fineprune/tensor';
import { median, runIfScript, selectBackend, writeResult } from './harness';

/** Launches per timed sample: the read-back that waits for the GPU is paid once per sample. */
const LAUNCHES = 4;

const MASKED_KERNELS = [
  FUSED_KERNELS.maskedMatMul,
  FUSED_KERNELS.maskedMatMulInputGrad,
  FUSED_KERNELS.maskedMatMulWeightGrad,
  FUSED_KERNELS.maskedMatMulBiasGrad,
];

/** With the masked-projection kernels (`program`) or without them, TF.js's op chain (`chain`). */
function useMaskedKernels(on: boolean): void {
  if (on) registerFusedWebGPUKernels();
  else
    for (const name of MASKED_KERNELS) if (tf.getKernel(name, 'webgpu')) tf.unregisterKernel(name, 'webgpu');
}

interface Operands {
  x: tf.Tensor2D;
  weight: tf.Tensor2D;
  mask: tf.Tensor2D;
  bias: tf.Tensor1D;
  scores: tf.Tensor2D;
  dy: tf.Tensor2D;
}

function operands(rows: number, inner: number, cols: number): Operands {
  return tf.tidy(() => ({
    x: tf.randomNormal([rows, inner], 0, 1, 'float32', 1) as tf.Tensor2D,
    weight: tf.randomNormal([inner, cols], 0, 0.05, 'float32', 2) as tf.Tensor2D,
    mask: tf.cast(
      tf.greater(tf.randomUniform([inner, cols], 0, 1, 'float32', 3), 0.5),
      'float32',
    ) as tf.Tensor2D,
    bias: tf.randomNormal([cols], 0, 0.1, 'float32', 4) as tf.Tensor1D,
    scores: tf.randomNormal([inner, cols], 0, 1, 'float32', 5) as tf.Tensor2D,
    dy: tf.randomNormal([rows, cols], 0, 1, 'float32', 6) as tf.Tensor2D,
  }));
}

/** Waits for the GPU to finish the tensors' programs by reading one element of each. */
async function settle(tensors: tf.Tensor[]): Promise<void> {
  for (const tensor of tensors) {
    const corner = tf.slice(tensor, new Array(tensor.rank).fill(0), new Array(tensor.rank).fill(1));
    await corner.data();
    corner.dispose();
  }
}

type Variant = { name: string; masked: boolean; run: (o: Operands) => tf.Tensor[] };

function variants(activation: MaskedDenseActivation): Variant[] {
  const project = (o: Operands, x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, s: tf.Tensor) =>
    maskedDense(x as tf.Tensor2D, w as tf.Tensor2D, o.mask, b as tf.Tensor1D, s, { activation });
  const backward = (o: Operands) =>
    tf.grads((x, w, b, s) => project(o, x!, w!, b!, s!))([o.x, o.weight, o.bias, o.scores], o.dy);
  return [
    { name: 'forward/program', masked: true, run: (o) => [project(o, o.x, o.weight, o.bias, o.scores)] },
    { name: 'forward/chain', masked: false, run: (o) => [project(o, o.x, o.weight, o.bias, o.scores)] },
    {
      name: 'forward/tfjsMatMulOnly',
      masked: false,
      run: (o) => [tf.fused.matMul({ a: o.x, b: o.weight, bias: o.bias })],
    },
    { name: 'forwardBackward/program', masked: true, run: backward },
    { name: 'forwardBackward/chain', masked: false, run: backward },
  ];
}

/** Median ms per launch of each variant, interleaved round by round, and the dispatches of one launch. */
async function measureShape(
  [rows, inner, cols]: [number, number, number],
  activation: MaskedDenseActivation,
  repeats: number,
): Promise<Record<string, { msPerLaunch: number; dispatches: number; samples: number[] }>> {
  const before = tf.memory().numTensors;
  const o = operands(rows, inner, cols);
  const list = variants(activation);
  const samples = new Map<string, number[]>(list.map((variant) => [variant.name, []]));
  const dispatches = new Map<string, number>();
  for (let round = 0; round < repeats + 1; round += 1) {
    for (const variant of list) {
      useMaskedKernels(variant.masked);
      const counter = countWebGPUWork();
      const start = performance.now();
      let outputs: tf.Tensor[] = [];
      for (let launch = 0; launch < LAUNCHES; launch += 1) {
        tf.dispose(outputs);
        outputs = variant.run(o);
        if (launch === 0) dispatches.set(variant.name, counter.counts().dispatches);
      }
      await settle(outputs);
      const ms = (performance.now() - start) / LAUNCHES;
      counter.stop();
      tf.dispose(outputs);
      if (round > 0) samples.get(variant.name)!.push(Math.round(ms * 10) / 10); // round 0 compiles
    }
  }
  useMaskedKernels(true);
  tf.dispose(Object.values(o));
  if (tf.memory().numTensors !== before) throw new Error('the projection benchmark leaked tensors');
  return Object.fromEntries(
    list.map(({ name }) => [
      name,
      {
        msPerLaunch: median(samples.get(name)!),
        dispatches: dispatches.get(name)!,
        samples: samples.get(name)!,
      },
    ]),
  );
}

export async function main(argv = process.argv.slice(2)): Promise<Record<string, unknown>> {
  const { values } = parseArgs({
    args: argv,
    options: { repeats: { type: 'string', default: '7' }, label: { type: 'string' } },
  });
  const backend = await selectBackend('webgpu');
  const repeats = Number(values.repeats);
  const shapes: Array<{ shape: [number, number, number]; activation: MaskedDenseActivation }> = [
    { shape: [2048, 128, 512], activation: 'gelu' },
    { shape: [2048, 512, 128], activation: 'linear' },
  ];
  const results: Record<string, unknown> = {};
  for (const { shape, activation } of shapes) {
    const rows = await measureShape(shape, activation, repeats);
    const ms = (name: string) => rows[name]!.msPerLaunch;
    results[`${shape[0]}x${shape[1]}·${shape[1]}x${shape[2]} ${activation}`] = {
      variants: rows,
      programOverTfjsMatMul: Math.round((ms('forward/program') / ms('forward/tfjsMatMulOnly')) * 100) / 100,
      chainOverProgram: {
        forward: Math.round((ms('forward/chain') / ms('forward/program')) * 100) / 100,
        forwardBackward:
          Math.round((ms('forwardBackward/chain') / ms('forwardBackward/program')) * 100) / 100,
      },
    };
    console.log(JSON.stringify({ shape, activation, rows }, null, 2));
  }
  const result = {
    backend: backend.backend,
    adapter: webgpuSelection()?.adapter,
    launchesPerSample: LAUNCHES,
    note: 'ms per launch = wall time of 4 launches and a 1-element read-back of each output, / 4; medians over the repeats; on Mesa llvmpipe this is software rendering on the 2 shared CPU cores',
    shapes: results,
  };
  const file = writeResult(values.label ? `webgpu-projection-${values.label}` : 'webgpu-projection', result);
  console.log(`written to ${file}`);
  await disposeWebGPU();
  return result;
}

runIfScript(import.meta.url, main);
