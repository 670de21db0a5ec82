/**
 * Filter pruning with shrink on a small CNN trained here on Fashion-MNIST (issue 18): accuracy
 * against the measured inference speed-up (wasm, batch 1 and 16) and the file size of the shrunk
 * model, and its training step time, each against the dense model it was pruned from.
 *
 * Per seed: the CNN (28×28×1 → conv1 16 3×3 relu → max-pool 2 → conv2 32 3×3 relu → max-pool 2 →
 * flatten → dense 64 relu → dense 10) is trained dense on a subset of the training split, then
 * fine-pruned from those weights at each target share of removed filters (conv1 and conv2, local:
 * each layer loses the same share) with unit magnitude (a filter's L2 norm) or learned unit
 * movement scores (Eq. 2 of Movement Pruning summed over a filter), unit Top-v and the cubic
 * schedule (Eq. 5), and shrunk with `shrink` of `@fineprune/layers`. The target 0 is the
 * reference: the same extra epoch of training with nothing removed (its speed-up, ×1, checks the
 * timing), so that the accuracy drop of a pruned model does not hide the gain of the extra epoch.
 * The dense and the shrunk
 * model are timed side by side in one process, in alternating blocks (median of the blocks).
 * Writes results/cnn-filters.json (or `--output`), partial results after every run.
 *
 *   cd bench && nice -n 10 npx tsx --conditions=source src/cnn-filters.ts [--seeds 3] [--sparsities 0,0.5,0.75,0.9]
 *     [--methods magnitude,movement] [--trainCount 12000] [--denseEpochs 2] [--pruneEpochs 1] [--blocks 30] [--blockMs 20]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { adam, evaluateClassifier, Pruner } from '@fineprune/core';
import { batches, evaluationBatches, loadFashionMnist, type Split } from '@fineprune/datasets';
import { fromLayersModel, type LayersPrunableModel, shrink, strip } from '@fineprune/layers';
import { topV } from '@fineprune/masks';
import { constant, cubic } from '@fineprune/schedulers';
import { magnitude } from '@fineprune/scores';
import { unitMagnitude, unitMovement, unitTopV } from '@fineprune/structured';
import { blocksSideBySide, median, runIfScript, selectBackend, writeResult } from './harness';
import { seedList } from './movement-fashion';

type Method = 'magnitude' | 'movement';

const BATCH_SIZE = 64;
const FILTER_KERNELS = ['conv1/kernel', 'conv2/kernel'];

function cnn(seed: number): tfl.LayersModel {
  const init = (offset: number) => tfl.initializers.heNormal({ seed: seed * 10 + offset });
  return tfl.sequential({
    name: 'fashion_cnn',
    layers: [
      tfl.layers.reshape({ name: 'image', inputShape: [784], targetShape: [28, 28, 1] }),
      tfl.layers.conv2d({
        name: 'conv1',
        filters: 16,
        kernelSize: 3,
        activation: 'relu',
        kernelInitializer: init(1),
      }),
      tfl.layers.maxPooling2d({ name: 'pool1', poolSize: 2 }),
      tfl.layers.conv2d({
        name: 'conv2',
        filters: 32,
        kernelSize: 3,
        activation: 'relu',
        kernelInitializer: init(2),
      }),
      tfl.layers.maxPooling2d({ name: 'pool2', poolSize: 2 }),
      tfl.layers.flatten({ name: 'flatten' }),
      tfl.layers.dense({ name: 'fc', units: 64, activation: 'relu', kernelInitializer: init(3) }),
      tfl.layers.dense({ name: 'logits', units: 10, kernelInitializer: init(4) }),
    ],
  });
}

/** The first `count` examples of a split (a view). */
function head(split: Split, count: number): Split {
  const size = Math.min(count, split.count);
  return {
    images: split.images.subarray(0, size * split.featureSize),
    labels: split.labels.subarray(0, size),
    count: size,
    featureSize: split.featureSize,
  };
}

/** Bytes of the weights file TF.js writes for the model (float32). */
async function weightBytes(model: tfl.LayersModel): Promise<number> {
  let bytes = 0;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const data = artifacts.weightData;
      bytes = Array.isArray(data)
        ? data.reduce((total, part) => total + part.byteLength, 0)
        : (data?.byteLength ?? 0);
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return bytes;
}

async function accuracyOf(model: tfl.LayersModel, split: Split): Promise<number> {
  const prunable = fromLayersModel(model, { loss: 'sparseCategoricalCrossentropy' });
  try {
    return (await evaluateClassifier(prunable, evaluationBatches(split, 1000))).accuracy;
  } finally {
    prunable.unwrap();
  }
}

interface Timing {
  /** Median CPU milliseconds per call. */
  denseMs: number;
  shrunkMs: number;
  speedUp: number;
  /** The fastest block's CPU milliseconds per call, and their ratio (less sensitive to other processes). */
  denseBestMs: number;
  shrunkBestMs: number;
  bestSpeedUp: number;
  /** Median wall-clock milliseconds per call (includes waiting for a core on a shared machine). */
  denseWallMs: number;
  shrunkWallMs: number;
}

function round(value: number, digits = 4): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** Median CPU (and wall-clock) milliseconds per call of `dense` and `shrunk`, timed in alternating blocks. */
function compare(dense: () => unknown, shrunk: () => unknown, blocks: number, blockMs: number): Timing {
  const [a, b] = blocksSideBySide(dense, shrunk, blocks, blockMs, 300);
  const [denseMs, shrunkMs] = [median(a.cpu), median(b.cpu)];
  const [denseBestMs, shrunkBestMs] = [Math.min(...a.cpu), Math.min(...b.cpu)];
  return {
    denseMs: round(denseMs),
    shrunkMs: round(shrunkMs),
    speedUp: round(denseMs / shrunkMs, 3),
    denseBestMs: round(denseBestMs),
    shrunkBestMs: round(shrunkBestMs),
    bestSpeedUp: round(denseBestMs / shrunkBestMs, 3),
    denseWallMs: round(median(a.wall)),
    shrunkWallMs: round(median(b.wall)),
  };
}

function inferenceTiming(
  dense: tfl.LayersModel,
  shrunk: tfl.LayersModel,
  batch: number,
  blocks: number,
  blockMs: number,
): Timing {
  const x = tf.randomUniform([batch, 784], 0, 1, 'float32', batch);
  const run = (model: tfl.LayersModel) => () => tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync());
  try {
    return compare(run(dense), run(shrunk), blocks, blockMs);
  } finally {
    x.dispose();
  }
}

/** One stock TF.js training step (SGD, sparse cross-entropy) of batch 64; changes the models' weights. */
function trainingTiming(
  dense: tfl.LayersModel,
  shrunk: tfl.LayersModel,
  blocks: number,
  blockMs: number,
): Timing {
  const x = tf.randomUniform([BATCH_SIZE, 784], 0, 1, 'float32', 3);
  const y = tf.oneHot(
    tf.tensor1d(
      Array.from({ length: BATCH_SIZE }, (_, index) => index % 10),
      'int32',
    ),
    10,
  );
  const optimizer = tf.train.sgd(1e-3);
  const step = (model: tfl.LayersModel) => () =>
    tf.tidy(() => {
      const loss = optimizer.minimize(
        () => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
        true,
      );
      return loss!.dataSync();
    });
  try {
    return compare(step(dense), step(shrunk), Math.max(3, Math.round(blocks / 3)), blockMs);
  } finally {
    tf.dispose([x, y]);
    optimizer.dispose();
  }
}

function scoresOf(method: Method) {
  return method === 'movement' ? unitMovement({ init: { type: 'magnitude' } }) : unitMagnitude();
}

export async function main(argv = process.argv.slice(2)): Promise<Record<string, unknown>> {
  const { values } = parseArgs({
    args: argv,
    options: {
      backend: { type: 'string', default: 'wasm' },
      seeds: { type: 'string', default: '3' },
      sparsities: { type: 'string', default: '0,0.5,0.75,0.9' },
      methods: { type: 'string', default: 'magnitude,movement' },
      trainCount: { type: 'string', default: '12000' },
      denseEpochs: { type: 'string', default: '2' },
      pruneEpochs: { type: 'string', default: '1' },
      blocks: { type: 'string', default: '30' },
      blockMs: { type: 'string', default: '20' },
      output: { type: 'string', default: 'cnn-filters' },
    },
  });
  const started = performance.now();
  const log = (message: string) =>
    console.log(`[${((performance.now() - started) / 1000).toFixed(0)}s] ${message}`);
  const backend = await selectBackend(values.backend!);
  const seeds = seedList(values.seeds!);
  const sparsities = values.sparsities!.split(',').map(Number);
  const methods = values.methods!.split(',') as Method[];
  const blocks = Number(values.blocks);
  const blockMs = Number(values.blockMs);
  const fashion = await loadFashionMnist();
  const train = head(fashion.train, Number(values.trainCount));
  const test = fashion.test;
  const source = (seed: number) => batches(train, { batchSize: BATCH_SIZE, seed });
  const denseSteps = Number(values.denseEpochs) * source(0).stepsPerEpoch;
  const pruneSteps = Number(values.pruneEpochs) * source(0).stepsPerEpoch;
  const warmupSteps = Math.round(0.1 * pruneSteps);
  const cooldownSteps = Math.round(0.2 * pruneSteps);

  const runs: Array<Record<string, unknown>> = [];
  const denseRuns: Array<Record<string, unknown>> = [];
  const result: Record<string, unknown> = {
    backend: backend.backend,
    flags: values,
    setting: {
      model:
        'Fashion-MNIST CNN: conv1 16×3×3 relu, max-pool 2, conv2 32×3×3 relu, max-pool 2, flatten (5·5·32), dense 64 relu, dense 10',
      data: `the first ${train.count} training images; accuracy on all ${test.count} test images`,
      dense: `${values.denseEpochs} epochs (${denseSteps} steps), batch ${BATCH_SIZE}, Adam 1e-3`,
      pruning: `from the dense weights, ${values.pruneEpochs} epoch (${pruneSteps} steps), Adam 1e-3 (scores Adam 1e-2); conv1 and conv2 filters, unitTopV local (each layer loses the target share), cubic schedule with ${warmupSteps} warm-up and ${cooldownSteps} cool-down steps, masks every 10 steps; magnitude: L2 norm of a filter's kernel slice; movement: unitMovement (init: magnitude)`,
      timing: `wasm, CPU time per call in alternating blocks of about ${blockMs} ms of calls after 300 ms of warm-up, ${blocks} blocks each (training step: ${Math.max(3, Math.round(blocks / 3))}); the median block and the fastest block; the dense model is the trained dense CNN, the shrunk one the output of shrink()`,
      seeds,
    },
    dense: denseRuns,
    runs,
  };
  const save = () =>
    writeResult(values.output!, { ...result, seconds: Math.round((performance.now() - started) / 1000) });

  for (const seed of seeds) {
    const denseModel = cnn(seed);
    const densePrunable = fromLayersModel(denseModel, { loss: 'sparseCategoricalCrossentropy' });
    const trainer = new Pruner({
      model: densePrunable,
      scores: magnitude(),
      mask: topV(),
      schedule: constant({ sparsity: 0, updateInterval: denseSteps }),
      optimizers: { weights: adam({ learningRate: 1e-3 }) },
      seed,
    });
    await trainer.run({ data: source(seed), untilStep: denseSteps });
    trainer.dispose();
    const dense = await strip(densePrunable);
    const trained = densePrunable
      .variables()
      .map(({ name, variable }) => ({ name, value: variable.clone() }));
    densePrunable.dispose();
    denseModel.dispose();
    const denseAccuracy = await accuracyOf(dense, test);
    const denseBytes = await weightBytes(dense);
    denseRuns.push({ seed, accuracy: denseAccuracy, weightBytes: denseBytes });
    log(`seed ${seed}: dense ${(denseAccuracy * 100).toFixed(2)}%, ${denseBytes} bytes`);

    for (const method of methods) {
      for (const sparsity of sparsities) {
        const model = cnn(seed);
        const prunable: LayersPrunableModel = fromLayersModel(model, {
          loss: 'sparseCategoricalCrossentropy',
        });
        for (const { name, variable } of prunable.variables())
          variable.assign(trained.find((entry) => entry.name === name)!.value);
        const pruner = new Pruner({
          model: prunable,
          parameters: FILTER_KERNELS,
          scores: scoresOf(method),
          mask: unitTopV({ scope: 'local' }),
          schedule: cubic({
            finalSparsity: sparsity,
            totalSteps: pruneSteps,
            warmupSteps,
            cooldownSteps,
            interval: 10,
          }),
          optimizers: { weights: adam({ learningRate: 1e-3 }), scores: adam({ learningRate: 1e-2 }) },
          seed,
        });
        const runStart = performance.now();
        await pruner.run({ data: source(seed + 100), untilStep: pruneSteps });
        const pruneSeconds = (performance.now() - runStart) / 1000;
        await pruner.updateMasks();
        const maskedAccuracy = (await evaluateClassifier(prunable, evaluationBatches(test, 1000))).accuracy;
        const { model: shrunk, structures } = await shrink(prunable);
        pruner.dispose();
        prunable.dispose();
        model.dispose();
        const accuracy = await accuracyOf(shrunk, test);
        const bytes = await weightBytes(shrunk);
        const before = tf.memory().numTensors;
        const batch1 = inferenceTiming(dense, shrunk, 1, blocks, blockMs);
        const batch16 = inferenceTiming(dense, shrunk, 16, blocks, blockMs);
        if (tf.memory().numTensors !== before) throw new Error('the timing loop leaked tensors');
        // Timed last: it trains both models a few steps (copies, so the dense reference stays as trained).
        const [denseCopy, shrunkCopy] = [
          await tfl.models.modelFromJSON(dense.toJSON(null, false) as never),
          shrunk,
        ];
        denseCopy.setWeights(dense.getWeights());
        const trainingStep = trainingTiming(denseCopy, shrunkCopy, blocks, blockMs);
        denseCopy.dispose();
        shrunk.dispose();
        const run = {
          seed,
          method,
          filterSparsity: sparsity,
          structures,
          accuracy,
          maskedAccuracy,
          denseAccuracy,
          accuracyDrop: round(denseAccuracy - accuracy),
          weightBytes: bytes,
          denseWeightBytes: denseBytes,
          sizeRatio: round(bytes / denseBytes),
          inference: { batch1, batch16 },
          trainingStep,
          pruneSeconds: Math.round(pruneSeconds),
        };
        runs.push(run);
        log(
          `seed ${seed} ${method} ${sparsity}: ${(accuracy * 100).toFixed(2)}% (masked ${(maskedAccuracy * 100).toFixed(2)}%), ${structures.map((entry) => `${entry.name} ${entry.kept}/${entry.count}`).join(', ')}, size ×${run.sizeRatio}, speed-up b1 ×${batch1.speedUp} b16 ×${batch16.speedUp}, train ×${trainingStep.speedUp}`,
        );
        save();
      }
    }
    for (const entry of trained) entry.value.dispose();
    dense.dispose();
  }
  const path = save();
  log(`wrote ${path}`);
  return result;
}

runIfScript(import.meta.url, main);
