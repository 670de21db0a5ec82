import * as tfl from '@tensorflow/tfjs-layers';
import { pruneOnce } from '@fineprune/core';
import { fileSystem, fromLayersModel, saveStripped } from '@fineprune/layers';
import { topV } from '@fineprune/masks';
import { magnitude } from '@fineprune/scores';
import { setBackend } from '@fineprune/tensor';

await setBackend('wasm');
// Your trained model, e.g. `await tfl.loadLayersModel(fileSystem('./my-model'))`; here a fresh MLP.
const model = tfl.sequential({
  layers: [
    tfl.layers.dense({ units: 300, activation: 'relu', inputShape: [784] }),
    tfl.layers.dense({ units: 100, activation: 'relu' }),
    tfl.layers.dense({ units: 10 }),
  ],
});
const prunable = fromLayersModel(model); // no loss, no optimizer: nothing is trained
const report = await pruneOnce(prunable, {
  scores: magnitude(),
  mask: topV({ scope: 'global' }),
  sparsity: 0.5,
});
for (const row of report.parameters)
  console.log(`${row.name} [${row.shape}]: kept ${row.kept} of ${row.total}`);
console.log(`all kernels: ${(report.sparsity * 100).toFixed(1)}% pruned, ${report.kept} weights kept`);
console.log(`left dense: ${report.skipped.map((weight) => `${weight.name} (${weight.reason})`).join(', ')}`);
await saveStripped(prunable, fileSystem('./mlp-pruned')); // plain W ⊙ M: stock tf.loadLayersModel loads it
console.log('saved the pruned model to ./mlp-pruned (model.json + weights)');
