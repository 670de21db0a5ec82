/**
 * Pretrains the small offline encoder with masked-language modelling (BERT's objective) on State of
 * the Union + Moby Dick + the Brown documents of the training split (the Brown dev documents are
 * left out, so the downstream dev set is never seen, even unlabelled). Deterministic: the same
 * arguments on the same backend give the same weights. Writes bench/pretrained/encoder-small-tfjs/
 * (model.safetensors in float16, config.json, pretraining.json) and results/encoder-pretrain.json.
 *
 *   cd bench && npx tsx --conditions=source src/encoder-pretrain.ts [--steps 600] [--batch 32]
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { addMany } from '@fineprune/tensor';
import { adam } from '@fineprune/core';
import { disposeBatch, mlmBatches } from '@fineprune/text';
import { createBertModel, type EncoderConfig, exportHuggingFace, mlmAccuracy } from '@fineprune/transformers';
import { loadPretrainingCorpus } from './encoder-data';
import { SMALL_ENCODER, TFJS_PRETRAINED_DIR } from './encoder-fixtures';
import { writeResult, selectBackend, runIfScript } from './harness';

export async function main(argv = process.argv.slice(2)): Promise<Record<string, unknown>> {
  const { values } = parseArgs({
    args: argv,
    options: {
      backend: { type: 'string', default: 'wasm' },
      steps: { type: 'string', default: '600' },
      batch: { type: 'string', default: '32' },
      learningRate: { type: 'string', default: '1e-3' },
      seed: { type: 'string', default: '0' },
      evaluateEvery: { type: 'string', default: '100' },
      output: { type: 'string', default: TFJS_PRETRAINED_DIR },
      // The tokenized corpus from `pnpm encoder-data` (default: tokenize the corpora packages now).
      data: { type: 'string' },
      // The encoder's shape (default SMALL_ENCODER: 2 layers, hidden 128, 2 heads, intermediate 512).
      layers: { type: 'string' },
      hidden: { type: 'string' },
      heads: { type: 'string' },
      intermediate: { type: 'string' },
      // Also write the weights at every evaluation (so an interrupted run leaves its latest state).
      checkpoint: { type: 'boolean', default: false },
    },
  });
  const started = performance.now();
  const log = (message: string) =>
    console.log(`[${((performance.now() - started) / 1000).toFixed(0)}s] ${message}`);
  const backend = await selectBackend(values.backend!);
  const steps = Number(values.steps);
  const batchSize = Number(values.batch);
  const peak = Number(values.learningRate);
  const seed = Number(values.seed);

  const pretraining = loadPretrainingCorpus(seed, values.data);
  const { corpus } = pretraining;
  log(
    `corpus: ${pretraining.documents} documents (${pretraining.brownTrainingTexts} Brown training texts), ${corpus.wordpieces} wordpieces, ${corpus.train.count} training / ${corpus.validation.count} validation sequences`,
  );
  const shape = (value: string | undefined, fallback: number) =>
    value === undefined ? fallback : Number(value);
  const config: EncoderConfig = {
    ...SMALL_ENCODER,
    numLayers: shape(values.layers, SMALL_ENCODER.numLayers),
    hiddenSize: shape(values.hidden, SMALL_ENCODER.hiddenSize),
    numHeads: shape(values.heads, SMALL_ENCODER.numHeads),
    intermediateSize: shape(values.intermediate, SMALL_ENCODER.intermediateSize),
  };
  const train = mlmBatches(corpus, { batchSize, seed, maxPredictions: 20 });
  // 64 held-out sequences, read in chunks of 16 (the 30,522-way logits of 64 × 20 predictions would
  // exceed the 128 MiB storage-buffer binding of many WebGPU adapters).
  const validationChunk = Math.min(16, corpus.validation.count);
  const validationChunks = Math.max(1, Math.floor(Math.min(64, corpus.validation.count) / validationChunk));
  const validation = mlmBatches(corpus, { batchSize: validationChunk, seed: 12345, split: 'validation' });

  const model = createBertModel({ config, task: { type: 'mlm', maxPredictions: 20 }, seed });
  const warmup = Math.round(0.06 * steps);
  // Linear warm-up, then linear decay (BERT's schedule), floored so the rate stays positive.
  const learningRate = (step: number) =>
    Math.max(peak * (step < warmup ? (step + 1) / warmup : (steps - step) / (steps - warmup)), 1e-7);
  const optimizer = adam({ learningRate, weightDecay: 0.01 });
  const variables = model.trainableVariables();

  const evaluate = async () => {
    let lossSum = 0;
    let correct = 0;
    let weight = 0;
    for (let chunk = 0; chunk < validationChunks; chunk++) {
      const batch = validation.batch(chunk);
      const hidden = model.forward(batch.x, { training: false }) as tf.Tensor;
      const loss = model.loss(hidden, batch);
      const value = (await loss.data())[0]!;
      const accuracy = await mlmAccuracy(model, hidden, batch.y);
      // The loss is the mean over the chunk's predicted positions: weight it by their number.
      lossSum += value * accuracy.weight;
      correct += accuracy.accuracy * accuracy.weight;
      weight += accuracy.weight;
      tf.dispose([hidden, loss]);
      disposeBatch(batch);
    }
    return { loss: lossSum / weight, accuracy: correct / weight };
  };

  const output = values.output!;
  const writeAtomic = (name: string, data: string | Uint8Array) => {
    mkdirSync(output, { recursive: true });
    const file = path.join(output, name);
    writeFileSync(`${file}.tmp`, data);
    renameSync(`${file}.tmp`, file);
  };
  const writeWeights = async () => {
    const exported = await exportHuggingFace(model, { dtype: 'F16' });
    writeAtomic('model.safetensors', exported.safetensors);
    writeAtomic('config.json', `${JSON.stringify(exported.config, null, 2)}\n`);
    return exported;
  };

  const history: Array<Record<string, number>> = [];
  // Counted after the first step, once Adam has created its two slots per variable.
  let tensorsBefore = 0;
  let windowLoss = 0;
  let windowSteps = 0;
  const trainStarted = performance.now();
  for (let step = 0; step < steps; step += 1) {
    if (step === 1) tensorsBefore = tf.memory().numTensors;
    const batch = train.batch(step);
    const { value, grads } = tf.variableGrads(
      () => model.loss(model.forward(batch.x, { training: true }), batch),
      variables.map((entry) => entry.variable),
    );
    // Clip the global gradient norm at 1 (as BERT pretraining does).
    const norm = tf.tidy(() => tf.sqrt(addMany(Object.values(grads).map((grad) => tf.sum(tf.square(grad))))));
    const normValue = (await norm.data())[0]!;
    const factor = normValue > 1 ? 1 / normValue : 1;
    const clipped: tf.NamedTensorMap =
      factor === 1
        ? grads
        : tf.tidy(() =>
            Object.fromEntries(Object.entries(grads).map(([key, grad]) => [key, tf.mul(grad, factor)])),
          );
    optimizer.apply(
      variables.flatMap(({ name, variable }) => {
        const gradient = clipped[variable.name];
        return gradient ? [{ name, variable, gradient }] : [];
      }),
      step,
    );
    const lossValue = (await value.data())[0]!;
    if (!Number.isFinite(lossValue)) throw new Error(`MLM loss became ${lossValue} at step ${step}`);
    windowLoss += lossValue;
    windowSteps += 1;
    tf.dispose([value, norm, ...Object.values(grads), ...(clipped === grads ? [] : Object.values(clipped))]);
    disposeBatch(batch);
    if ((step + 1) % Number(values.evaluateEvery) === 0 || step + 1 === steps) {
      const evaluation = await evaluate();
      const row = {
        step: step + 1,
        trainLoss: windowLoss / windowSteps,
        validationLoss: evaluation.loss,
        validationAccuracy: evaluation.accuracy,
        seconds: (performance.now() - trainStarted) / 1000,
      };
      history.push(row);
      log(
        `step ${row.step}: train loss ${row.trainLoss.toFixed(3)}, validation loss ${row.validationLoss.toFixed(3)}, masked-token accuracy ${(row.validationAccuracy * 100).toFixed(1)}%`,
      );
      windowLoss = 0;
      windowSteps = 0;
      if (values.checkpoint && step + 1 < steps) {
        await writeWeights();
        writeAtomic('checkpoint.json', `${JSON.stringify({ step: step + 1, history }, null, 2)}\n`);
      }
    }
  }
  const trainSeconds = (performance.now() - trainStarted) / 1000;
  const exported = await writeWeights();
  const final = history[history.length - 1]!;
  const record = {
    backend: backend.backend,
    config,
    corpus: {
      documents: pretraining.documents,
      brownTrainingTexts: pretraining.brownTrainingTexts,
      brownDevTextsLeftOut: pretraining.brownDevTextsLeftOut,
      wordpieces: corpus.wordpieces,
      trainingSequences: corpus.train.count,
      validationSequences: corpus.validation.count,
      sequenceLength: corpus.sequenceLength,
    },
    training: {
      steps,
      batchSize,
      tokensSeen: steps * batchSize * corpus.sequenceLength,
      epochs: (steps * batchSize) / corpus.train.count,
      optimizer: `AdamW, peak learning rate ${peak}, weight decay 0.01, ${warmup} warm-up steps then linear decay, global-norm clipping 1`,
      masking: '15% of non-special positions (at most 20 per sequence): 80% [MASK], 10% random, 10% kept',
      seed,
      seconds: Math.round(trainSeconds),
      msPerStep: Math.round((trainSeconds * 1000) / steps),
      tokensPerSecond: Math.round((steps * batchSize * corpus.sequenceLength) / trainSeconds),
    },
    final,
    history,
    tensorsLeakedAfterFirstStep: tf.memory().numTensors - tensorsBefore,
    files: { safetensorsBytes: exported.safetensors.length, dtype: 'F16' },
  };
  writeAtomic('pretraining.json', `${JSON.stringify(record, null, 2)}\n`);
  model.dispose();
  optimizer.dispose();
  const file = writeResult('encoder-pretrain', record);
  log(`written to ${output} and ${file}`);
  return record;
}

runIfScript(import.meta.url, main);
