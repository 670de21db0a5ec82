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
const acc: Record<string, number[]> = {};
const P = Pruner.prototype as any;
for (const m of ['selectMasks', 'accumulatedGradients']) {
  const orig = P[m];
  P[m] = function (...a: any[]) { const s = performance.now(); const r = orig.apply(this, a);
    if (r instanceof Promise) return r.then((v: any) => { (acc[m] ??= []).push(performance.now() - s); return v; });
    (acc[m] ??= []).push(performance.now() - s); return r; };
}
const opts = (pruner as any).optimizerEntries.call(pruner);
for (const e of opts) { const o = e.optimizer; const ap = o.apply.bind(o); o.apply = (l: any, s: any) => { const t = performance.now(); ap(l, s); (acc['apply-' + e.key] ??= []).push(performance.now() - t); }; }
const tot: number[] = [];
for (let s = 0; s < 160; s++) { const b = source.batch(s); const t = performance.now(); await pruner.trainStep(b); tot.push(performance.now() - t); tf.dispose([b.x, b.y]); }
const med = (a: number[]) => { const s = a.slice(40).sort((x, y) => x - y); return s[s.length >> 1].toFixed(3); };
console.log('total', med(tot)); for (const [k, v] of Object.entries(acc)) console.log(k, med(v));
