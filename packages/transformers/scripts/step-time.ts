/**
 * Forward + backward step time of the BERT encoder on a backend (default wasm), for the sizes of
 * the package report. Run: npx tsx --conditions=source scripts/step-time.ts [wasm|cpu] [steps]
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { setBackend } from '@fineprune/tensor';
import { bertBaseUncasedConfig, type BertTask, createBertModel, type EncoderConfig } from '../src/index';

const backend = process.argv[2] ?? 'wasm';
const steps = Number(process.argv[3] ?? 3);
const only = process.argv[4];
await setBackend(backend);

const sizes: Record<string, Partial<EncoderConfig>> = {
  a: { numLayers: 2, hiddenSize: 128, numHeads: 2, intermediateSize: 512 },
  b: { numLayers: 4, hiddenSize: 256, numHeads: 4, intermediateSize: 1024 },
};
const B = 16;
const L = 128;
const P = 20;

function batch(task: BertTask, step: number) {
  return tf.tidy(() => {
    const ids = tf.randomUniform([B, L], 1, 30522, 'int32', step) as tf.Tensor2D;
    const x = {
      inputIds: ids,
      tokenTypeIds: tf.zeros([B, L], 'int32') as tf.Tensor2D,
      attentionMask: tf.ones([B, L], 'int32') as tf.Tensor2D,
    };
    if (task.type === 'classification') return { x, y: tf.randomUniform([B], 0, 2, 'int32', step + 1) };
    return {
      x,
      y: [
        tf.randomUniform([B, P], 1, L, 'int32', step + 2),
        tf.randomUniform([B, P], 0, 30522, 'int32', step + 3),
        tf.ones([B, P]),
      ],
    };
  });
}

for (const [label, size] of Object.entries(sizes)) {
  if (only && only !== label) continue;
  const config = { ...bertBaseUncasedConfig, ...size, vocabSize: 30522, maxPositions: 512 };
  for (const task of [
    { type: 'classification', numLabels: 2 },
    { type: 'mlm', maxPredictions: P },
  ] as BertTask[]) {
    const model = createBertModel({ config, task, seed: 1 });
    const variables = model.trainableVariables().map((entry) => entry.variable);
    const times: number[] = [];
    for (let step = 0; step <= steps; step += 1) {
      const data = batch(task, step);
      const start = performance.now();
      const { value, grads } = tf.variableGrads(
        () => model.loss(model.forward(data.x, { training: true }), data as never),
        variables,
      );
      await value.data();
      await Promise.all(Object.values(grads).map((grad) => grad.data()));
      const elapsed = performance.now() - start;
      if (step > 0) times.push(elapsed);
      tf.dispose([
        value,
        ...Object.values(grads),
        data.x.inputIds,
        data.x.tokenTypeIds,
        data.x.attentionMask,
        ...[data.y].flat(),
      ]);
    }
    const mean = times.reduce((a, b) => a + b, 0) / times.length;
    console.log(
      JSON.stringify({
        backend,
        size: label,
        task: task.type,
        embeddingsTrainable: !model.embeddingsFrozen,
        layers: config.numLayers,
        hidden: config.hiddenSize,
        batch: B,
        length: L,
        stepMs: Math.round(mean),
        minMs: Math.round(Math.min(...times)),
        tokensPerSecond: Math.round((B * L) / (mean / 1000)),
        tensors: tf.memory().numTensors,
      }),
    );
    model.dispose();
  }
}
