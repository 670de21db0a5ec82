import * as tf from '@tensorflow/tfjs-core';
import { Pruner, adam } from '@fineprune/core';
import { batches, loadMnist } from '@fineprune/datasets';
import { fromLayersModel } from '@fineprune/layers';
import { topV } from '@fineprune/masks';
import { cubic } from '@fineprune/schedulers';
import { movement } from '@fineprune/scores';
import { selectBackend } from './harness';
import { benchmarkMlp } from './mlp-fixtures';
await selectBackend('wasm');
const dataset = await loadMnist();
const source = batches(dataset.train, { batchSize: 100, seed: 3 });
const model = fromLayersModel(benchmarkMlp(1), { loss: 'sparseCategoricalCrossentropy', fromLogits: true });
const pruner = new Pruner({ model, scores: movement(), mask: topV({ scope: 'local' }),
  schedule: cubic({ finalSparsity: 0.9, totalSteps: 210, warmupSteps: 9, cooldownSteps: 200 }),
  optimizers: { weights: adam({ learningRate: 1e-3 }), scores: adam({ learningRate: 1e-2 }) } });
for (let s = 0; s < 30; s++) { const b = source.batch(s); await pruner.trainStep(b); tf.dispose([b.x, b.y]); }
const b = source.batch(31);
const info = await tf.profile(async () => { await pruner.trainStep(b); });
for (const k of info.kernels) console.log(k.name.padEnd(28), JSON.stringify(k.inputShapes).padEnd(40), (k.kernelTimeMs as number).toFixed(3));
