/**
 * The example's work, independent of the page: select WebGPU (or fall back to wasm), then prune a
 * small two-layer network to 50% sparsity with magnitude scores and a global Top-v mask, and fine-tune
 * it for a few SGD steps with straight-through masked weights.
 */
import { disposeWebGPU, registerWebGPUBackend, webgpuSelection } from '@fineprune/backend-webgpu';
import { topV } from '@fineprune/masks';
import { magnitude } from '@fineprune/scores';
import { createRandom, dense, maskedWeight, setBackend } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';

/** What the page reports (and the browser test checks). */
export interface PruneReport {
  backend: string;
  /** Why WebGPU was not used, when the page fell back to wasm. */
  fallbackReason?: string;
  /** The WebGPU adapter, when WebGPU was used. */
  adapter?: string;
  sparsityTarget: number;
  /** Per layer: the kept fraction of the mask. */
  keptFractions: number[];
  /** Per layer: how many pruned weights are non-zero in the effective weight (must be 0). */
  nonZeroPruned: number[];
  lossBefore: number;
  lossAfter: number;
  milliseconds: number;
}

interface Parameter {
  name: string;
  group: string;
  kind: string;
  shape: number[];
  size: number;
  weight: tf.Variable;
  mask: tf.Variable;
  effectiveWeight(): tf.Tensor;
  setWeightTransform(): void;
}

function parameter(name: string, shape: [number, number], seed: number): Parameter {
  const random = createRandom(seed);
  const values = Float32Array.from({ length: shape[0] * shape[1] }, () => (random.next() * 2 - 1) * 0.5);
  const weight = tf.variable(tf.tensor2d(values, shape), true, `${name}/kernel`);
  const mask = tf.variable(tf.onesLike(weight), false, `${name}/mask`);
  return {
    name,
    group: name,
    kind: 'dense',
    shape,
    size: weight.size,
    weight,
    mask,
    effectiveWeight: () => maskedWeight(weight, mask),
    setWeightTransform: () => {},
  };
}

/**
 * Runs the example on the best backend among webgpu and wasm.
 *
 * @param log - receives progress lines
 * @returns what happened
 *
 * @example
 * ```ts
 * const report = await prune(console.log);
 * ```
 */
export async function prune(log: (line: string) => void = () => {}): Promise<PruneReport> {
  const start = performance.now();
  registerWebGPUBackend();
  let fallbackReason: string | undefined;
  try {
    await setBackend('webgpu');
  } catch (error) {
    fallbackReason = error instanceof Error ? error.message : String(error);
    log(`WebGPU unavailable, falling back to wasm: ${fallbackReason}`);
    await setBackend('wasm');
  }
  const backend = tf.getBackend();
  log(`backend: ${backend}`);

  const layers = [parameter('hidden', [16, 32], 1), parameter('output', [32, 4], 2)];
  const random = createRandom(3);
  const x = tf.tensor2d(
    Float32Array.from({ length: 64 * 16 }, () => random.next() * 2 - 1),
    [64, 16],
  );
  const labels = tf.oneHot(
    tf.tensor1d(
      Array.from({ length: 64 }, (_, i) => i % 4),
      'int32',
    ),
    4,
  );
  const loss = () => {
    const hidden = tf.relu(dense(x, layers[0]!.effectiveWeight() as tf.Tensor2D));
    return tf.losses.softmaxCrossEntropy(labels, dense(hidden, layers[1]!.effectiveWeight() as tf.Tensor2D));
  };

  // Prune: magnitude scores, one global Top-v selection at 50% sparsity.
  const sparsityTarget = 0.5;
  const context = { step: 0, model: undefined as never, random };
  const scores = await Promise.all(
    layers.map((layer) => magnitude().compute({ parameter: layer, scores: undefined }, context)),
  );
  const masks = await topV({ scope: 'global' }).compute(
    layers.map((layer, index) => ({ parameter: layer, scores: scores[index]! })),
    sparsityTarget,
    context,
  );
  for (const [index, layer] of layers.entries()) layer.mask.assign(masks[index]!);
  tf.dispose([...scores, ...masks]);

  const lossBefore = (await (loss() as tf.Scalar).data())[0]!;
  const variables = layers.map((layer) => layer.weight);
  for (let step = 0; step < 20; step += 1) {
    const { value, grads } = tf.variableGrads(loss as () => tf.Scalar, variables);
    tf.tidy(() => {
      for (const variable of variables) variable.assign(tf.sub(variable, tf.mul(grads[variable.name]!, 0.5)));
    });
    tf.dispose([value, ...Object.values(grads)]);
  }
  const lossAfter = (await (loss() as tf.Scalar).data())[0]!;

  const keptFractions: number[] = [];
  const nonZeroPruned: number[] = [];
  for (const layer of layers) {
    const mask = Float32Array.from(await layer.mask.data());
    const effective = Float32Array.from(await layer.effectiveWeight().data());
    keptFractions.push(mask.reduce((sum, value) => sum + value, 0) / mask.length);
    nonZeroPruned.push(
      mask.reduce((count, value, index) => count + (value === 0 && effective[index] !== 0 ? 1 : 0), 0),
    );
  }
  const report: PruneReport = {
    backend,
    ...(fallbackReason === undefined ? {} : { fallbackReason }),
    ...(backend === 'webgpu'
      ? { adapter: webgpuSelection()?.adapter.description || webgpuSelection()?.adapter.vendor }
      : {}),
    sparsityTarget,
    keptFractions,
    nonZeroPruned,
    lossBefore,
    lossAfter,
    milliseconds: Math.round(performance.now() - start),
  };
  log(
    `loss ${lossBefore.toFixed(4)} -> ${lossAfter.toFixed(4)}, kept ${keptFractions.map((f) => f.toFixed(3)).join(', ')}`,
  );
  tf.dispose([x, labels, ...layers.flatMap((layer) => [layer.weight, layer.mask])]);
  if (backend === 'webgpu') await disposeWebGPU();
  return report;
}
