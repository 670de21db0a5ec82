/**
 * Time and memory of one pruning stage per saliency criterion on the MLP 784-300-100-10 (tanh),
 * scoring on 1,000 MNIST training examples (Appendix B.2): measurement (gradients, Gauss–Newton
 * diagonal, H·g, SynFlow) + saliencies + global exact-count selection + mask assignment. The
 * criteria run interleaved, repeat by repeat, so that machine noise hits all alike; QM's cost is
 * reported as a ratio of MP's from the same repeats. Writes results/loss-modelling-stage-wasm.json.
 *
 *   cd bench && nice -n 10 npx tsx --conditions=source src/loss-modelling-stage.ts [--backend wasm] [--repeats 5]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import {
  denseNetwork,
  grasp,
  linearModel,
  magnitudeCriterion,
  optimalBrainDamage,
  pruneInStages,
  quadraticModel,
  randomCriterion,
  type SaliencyCriterion,
  snapshot,
  stageSchedule,
  synflow,
} from '@fineprune/criteria';
import { batches, loadMnist, splitValidation } from '@fineprune/datasets';
import { median, writeResult, selectBackend, runIfScript } from './harness';

const CRITERIA: Record<string, () => SaliencyCriterion> = {
  mp: () => magnitudeCriterion(),
  random: () => randomCriterion({ seed: 1 }),
  lm: () => linearModel(),
  'obd (exact G)': () => optimalBrainDamage({ gaussNewton: 'exact' }),
  'obd (sampled G)': () => optimalBrainDamage({ gaussNewton: 'sampled' }),
  'qm (exact G)': () => quadraticModel({ gaussNewton: 'exact' }),
  'qm (sampled G)': () => quadraticModel({ gaussNewton: 'sampled' }),
  grasp: () => grasp(),
  synflow: () => synflow(),
};

export async function main(argv = process.argv.slice(2)): Promise<Record<string, unknown>> {
  const { values } = parseArgs({
    args: argv,
    options: {
      backend: { type: 'string', default: 'wasm' },
      repeats: { type: 'string', default: '5' },
      examples: { type: 'string', default: '1000' },
    },
  });
  const backend = await selectBackend(values.backend!);
  const repeats = Number(values.repeats);
  const examples = Number(values.examples);
  const mnist = await loadMnist();
  const { train } = splitValidation(mnist.train, 10_000, 0);
  const scoring = batches(train, { batchSize: examples, seed: 9 });
  const model = denseNetwork({ units: [784, 300, 100, 10], activation: 'tanh', seed: 1 });
  const dense = snapshot(model);
  const schedule = stageSchedule({ stages: 1, finalSparsity: 0.5 });
  const names = Object.keys(CRITERIA);
  const timings: Record<string, { total: number[]; measure: number[]; select: number[] }> = {};
  for (const name of names) timings[name] = { total: [], measure: [], select: [] };
  const memory: Record<string, { measuredTensorBytes: number; tensorsLeaked: number; rssDeltaMiB: number }> =
    {};

  for (let repeat = -1; repeat < repeats; repeat += 1) {
    for (const name of names) {
      dense.restore();
      const criterion = CRITERIA[name]!();
      const tensorsBefore = tf.memory().numTensors;
      const rssBefore = process.memoryUsage().rss;
      const start = performance.now();
      let measuredBytes = 0;
      const { stages } = await pruneInStages({
        model,
        criterion: {
          ...criterion,
          measure: async (m, b) => {
            await criterion.measure(m, b);
            const measured = criterion.measurements!;
            for (const map of [
              measured.gradient,
              measured.gaussNewton,
              measured.hessianGradient,
              measured.synflow,
            ]) {
              for (const tensor of map?.values() ?? []) measuredBytes += tensor.size * 4;
            }
          },
          compute: criterion.compute,
          dispose: criterion.dispose,
        } as SaliencyCriterion,
        schedule,
        scoringData: (stage) => [scoring.batch(repeat + 1 + stage)],
      });
      const total = performance.now() - start;
      if (repeat < 0) {
        memory[name] = {
          measuredTensorBytes: measuredBytes,
          tensorsLeaked: tf.memory().numTensors - tensorsBefore,
          rssDeltaMiB: Math.round(((process.memoryUsage().rss - rssBefore) / 2 ** 20) * 10) / 10,
        };
        continue; // warm-up
      }
      timings[name]!.total.push(total);
      timings[name]!.measure.push(stages[0]!.measureMs);
      timings[name]!.select.push(stages[0]!.selectMs);
    }
    console.log(`repeat ${repeat} done`);
  }
  const round = (value: number) => Math.round(value * 10) / 10;
  const perCriterion = Object.fromEntries(
    names.map((name) => [
      name,
      {
        stageMedianMs: round(median(timings[name]!.total)),
        measureMedianMs: round(median(timings[name]!.measure)),
        selectMedianMs: round(median(timings[name]!.select)),
        ...memory[name],
      },
    ]),
  );
  const ratio = (name: string) =>
    Math.round(median(timings[name]!.total.map((value, index) => value / timings.mp!.total[index]!)) * 100) /
    100;
  const result = {
    backend: backend.backend,
    model: 'MLP 784-300-100-10 tanh (266,200 prunable weights)',
    scoringExamples: examples,
    stage:
      'one stage 0 → 50% sparsity: measure + saliencies + global exact-count selection + mask assignment',
    repeats,
    perCriterion,
    qmOverMp: { exact: ratio('qm (exact G)'), sampled: ratio('qm (sampled G)') },
    lmOverMp: ratio('lm'),
  };
  console.log(JSON.stringify(result, null, 2));
  writeResult(`loss-modelling-stage-${backend.backend}`, result);
  dense.dispose();
  model.dispose();
  return result;
}

runIfScript(import.meta.url, main);
