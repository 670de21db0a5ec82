/**
 * Pretrains the small offline encoder with masked-language modelling (BERT's objective) on State of
 * the Union + Moby Dick + the Brown documents of the training split (the Brown dev documents are
 * left out, so the downstream dev set is never seen, even unlabelled). Deterministic: the same
 * arguments on the same backend give the same weights. Writes bench/pretrained/encoder-small/
 * (model.safetensors in float16, config.json, pretraining.json) and results/encoder-pretrain.json.
 *
 *   cd bench && npx tsx --conditions=source src/encoder-pretrain.ts [--steps 600] [--batch 32]
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { adam } from '@fineprune/core';
import { setBackend } from '@fineprune/tensor';
import {
  brownGenreTask,
  createBertTokenizer,
  disposeBatch,
  loadBrown,
  loadMobyDick,
  loadSotu,
  mlmBatches,
  mlmCorpus,
} from '@fineprune/text';
import { createBertModel, exportHuggingFace, mlmAccuracy } from '@fineprune/transformers';
import { BROWN_SPLIT_SEED, PRETRAINED_DIR, SMALL_ENCODER } from './encoder-fixtures';
import { writeResult } from './harness';

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
      output: { type: 'string', default: PRETRAINED_DIR },
    },
  });
  const started = performance.now();
  const log = (message: string) =>
    console.log(`[${((performance.now() - started) / 1000).toFixed(0)}s] ${message}`);
  const backend = await setBackend(values.backend!);
  const steps = Number(values.steps);
  const batchSize = Number(values.batch);
  const peak = Number(values.learningRate);
  const seed = Number(values.seed);

  const tokenizer = createBertTokenizer();
  const brownDevDocuments = new Set(brownGenreTask(tokenizer, { seed: BROWN_SPLIT_SEED }).stats.devDocuments);
  const brown = loadBrown().filter((document) => !brownDevDocuments.has(document.id));
  const documents = [...loadSotu(), ...loadMobyDick(), ...brown];
  const corpus = mlmCorpus(tokenizer, documents, { sequenceLength: SMALL_ENCODER.maxPositions, seed });
  log(
    `corpus: ${documents.length} documents (${brown.length} Brown training texts), ${corpus.wordpieces} wordpieces, ${corpus.train.count} training / ${corpus.validation.count} validation sequences`,
  );
  const train = mlmBatches(corpus, { batchSize, seed, maxPredictions: 20 });
  const validationSize = Math.min(64, corpus.validation.count);
  const validation = mlmBatches(corpus, { batchSize: validationSize, seed: 12345, split: 'validation' });

  const model = createBertModel({ config: SMALL_ENCODER, task: { type: 'mlm', maxPredictions: 20 }, seed });
  const warmup = Math.round(0.06 * steps);
  // Linear warm-up, then linear decay (BERT's schedule), floored so the rate stays positive.
  const learningRate = (step: number) =>
    Math.max(peak * (step < warmup ? (step + 1) / warmup : (steps - step) / (steps - warmup)), 1e-7);
  const optimizer = adam({ learningRate, weightDecay: 0.01 });
  const variables = model.trainableVariables();

  const evaluate = async () => {
    const batch = validation.batch(0);
    const hidden = model.forward(batch.x, { training: false }) as tf.Tensor;
    const loss = model.loss(hidden, batch);
    const value = (await loss.data())[0]!;
    const { accuracy } = await mlmAccuracy(model, hidden, batch.y);
    tf.dispose([hidden, loss]);
    disposeBatch(batch);
    return { loss: value, accuracy };
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
    const norm = tf.tidy(() => tf.sqrt(tf.addN(Object.values(grads).map((grad) => tf.sum(tf.square(grad))))));
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
    }
  }
  const trainSeconds = (performance.now() - trainStarted) / 1000;
  const exported = await exportHuggingFace(model, { dtype: 'F16' });
  const output = values.output!;
  mkdirSync(output, { recursive: true });
  const writeAtomic = (name: string, data: string | Uint8Array) => {
    const file = path.join(output, name);
    writeFileSync(`${file}.tmp`, data);
    renameSync(`${file}.tmp`, file);
  };
  writeAtomic('model.safetensors', exported.safetensors);
  writeAtomic('config.json', `${JSON.stringify(exported.config, null, 2)}\n`);
  const final = history[history.length - 1]!;
  const record = {
    backend: backend.backend,
    config: SMALL_ENCODER,
    corpus: {
      documents: documents.length,
      brownTrainingTexts: brown.length,
      brownDevTextsLeftOut: brownDevDocuments.size,
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

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
