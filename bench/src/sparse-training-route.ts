/**
 * The sparse route of `maskedDense` against its dense route on wasm, for one training step's forward
 * and backward of a masked projection with learned scores (y = x·(W ⊙ M) + b, then ∂L/∂W, ∂L/∂b,
 * ∂L/∂S and, with `inputGradient`, ∂L/∂x in the same backward pass): the share of kept weights at which the two meet, per
 * shape and thread count. W changes between steps as in training, so the dense route packs a new
 * W ⊙ M for XNNPACK at every step. The two routes run interleaved step by step in one process
 * (the dense one by `FINEPRUNE_SPARSE_ROUTE` set off and on around its calls).
 * Writes results/sparse-training-route[-<threads>t].json.
 *
 *   cd bench && [FINEPRUNE_WASM_THREADS=2] npx tsx --conditions=source src/sparse-training-route.ts [--steps 60]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { maskedDense, SPARSE_ROUTE_MAX_DENSITY } from '@fineprune/tensor';
import { median, runIfScript, selectBackend, writeResult } from './harness';

interface Shape {
  name: string;
  batch: number;
  inputs: number;
  units: number;
  inputGradient: boolean;
}

const SHAPES: Shape[] = [
  { name: 'MLP layer 1 (100 × 784 → 300)', batch: 100, inputs: 784, units: 300, inputGradient: false },
  { name: 'MLP layer 2 (100 × 300 → 100)', batch: 100, inputs: 300, units: 100, inputGradient: true },
  { name: 'encoder FFN in (2048 × 128 → 512)', batch: 2048, inputs: 128, units: 512, inputGradient: true },
  { name: 'encoder FFN out (2048 × 512 → 128)', batch: 2048, inputs: 512, units: 128, inputGradient: true },
];
const KEPT = [0.05, 0.1, 0.2, 0.3];

function setSparseRoute(on: boolean): void {
  if (on) delete process.env.FINEPRUNE_SPARSE_ROUTE;
  else process.env.FINEPRUNE_SPARSE_ROUTE = '0';
}

export async function main(argv = process.argv.slice(2)): Promise<Record<string, unknown>> {
  const { values } = parseArgs({ args: argv, options: { steps: { type: 'string', default: '60' } } });
  const backend = await selectBackend('wasm');
  const steps = Number(values.steps);
  const rows: Array<Record<string, unknown>> = [];
  const tensorsBefore = tf.memory().numTensors;
  for (const shape of SHAPES) {
    for (const kept of KEPT) {
      const x = tf.randomUniform([shape.batch, shape.inputs], -1, 1, 'float32', 1) as tf.Tensor2D;
      const [weight, scores, bias] = tf.tidy(() => [
        tf.variable(tf.randomUniform([shape.inputs, shape.units], -0.1, 0.1, 'float32', 2)),
        tf.variable(tf.randomUniform([shape.inputs, shape.units], 0, 1, 'float32', 3)),
        tf.variable(tf.zeros([shape.units])),
      ]) as [tf.Variable, tf.Variable, tf.Variable];
      const mask = tf.tidy(() =>
        tf.cast(tf.less(tf.randomUniform([shape.inputs, shape.units], 0, 1, 'float32', 4), kept), 'float32'),
      );
      const variables = [weight, bias, scores];
      const step = (sparse: boolean) => {
        setSparseRoute(sparse);
        const start = performance.now();
        const outputs = tf.tidy(() => {
          // one forward and backward: the gradients in W, b and S, and in x where the layer is not
          // the first (x is then one of the differentiated inputs)
          const project = (input: tf.Tensor, w: tf.Tensor, b: tf.Tensor, s: tf.Tensor) =>
            tf.sum(
              maskedDense(input as tf.Tensor2D, w as tf.Tensor2D, mask, b as tf.Tensor1D, s),
            ) as tf.Scalar;
          if (shape.inputGradient) return tf.valueAndGrads(project)([x, weight, bias, scores]).grads;
          return tf.variableGrads(() => project(x, weight, bias, scores), variables).grads;
        });
        tf.dispose(outputs as tf.TensorContainer);
        // a new W at every step, as after an optimizer update (the dense route packs it again)
        const next = tf.tidy(() => tf.mul(weight, 1.0001));
        weight.assign(next);
        next.dispose();
        return performance.now() - start;
      };
      const times = { sparse: [] as number[], dense: [] as number[] };
      for (let index = 0; index < steps + 5; index += 1) {
        const order: Array<'sparse' | 'dense'> = index % 2 === 0 ? ['sparse', 'dense'] : ['dense', 'sparse'];
        for (const route of order) {
          const elapsed = step(route === 'sparse');
          if (index >= 5) times[route].push(elapsed);
        }
      }
      setSparseRoute(true);
      const sparseMs = median(times.sparse);
      const denseMs = median(times.dense);
      rows.push({
        shape: shape.name,
        kept,
        sparseMs: Math.round(sparseMs * 1000) / 1000,
        denseMs: Math.round(denseMs * 1000) / 1000,
        speedup: Math.round((denseMs / sparseMs) * 100) / 100,
        routeTaken: kept <= SPARSE_ROUTE_MAX_DENSITY ? 'sparse' : 'dense',
      });
      tf.dispose([x, weight, scores, bias, mask]);
    }
  }
  const threads = Number(process.env.FINEPRUNE_WASM_THREADS ?? 1);
  const result = {
    backend: backend.backend,
    threads,
    steps,
    what: 'median ms of one forward + backward of maskedDense with bias and scores (and the input gradient where the layer is not the first), sparse route against dense route, interleaved',
    threshold: SPARSE_ROUTE_MAX_DENSITY,
    rows,
    tensorsLeaked: tf.memory().numTensors - tensorsBefore,
  };
  const file = writeResult(`sparse-training-route-${threads}t`, result);
  console.log(JSON.stringify(result, null, 2));
  console.log(`written to ${file}`);
  return result;
}

runIfScript(import.meta.url, main);
