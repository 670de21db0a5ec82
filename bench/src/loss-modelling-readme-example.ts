// The runnable example of packages/criteria/README.md, kept here so that it is type-checked and can be run:
//   cd bench && npx tsx --conditions=source src/loss-modelling-readme-example.ts
import { sgd } from '@fineprune/core';
import {
  denseNetwork,
  pruningFramework,
  quadraticModel,
  stageSchedule,
  trainSteps,
} from '@fineprune/criteria';
import { batches, evaluationBatches, loadMnist, splitValidation } from '@fineprune/datasets';
import { setBackend } from '@fineprune/tensor';

await setBackend('wasm');
const mnist = await loadMnist();
const { train, validation } = splitValidation(mnist.train, 10_000, 0);
const model = denseNetwork({ units: [784, 300, 100, 10], activation: 'tanh', seed: 1 });
const training = batches(train, { batchSize: 100, seed: 0 });
const scoring = batches(train, { batchSize: 1000, seed: 1 }); // 1,000 fresh examples per stage
const train500 = async (phase: string) => {
  const optimizer = sgd({ learningRate: 0.01, momentum: 0.9 });
  await trainSteps(model, {
    optimizer,
    batch: (step) => training.batch(step),
    steps: 500,
    weightDecay: 5e-4,
    onLoss: (step, loss) => console.log(`${phase}: step ${step + 1}/500, loss ${loss.toFixed(4)}`), // every 100 steps
  });
  optimizer.dispose();
};

console.log(
  'Algorithm 1 on MNIST: train 500 steps, QM in 14 stages, fine-tune 500 steps; the results print at the end',
);
const report = await pruningFramework({
  model,
  criterion: quadraticModel({ lambda: 0, gaussNewton: 'sampled' }),
  schedule: stageSchedule({ stages: 14, finalSparsity: 0.9885, kind: 'exponential' }),
  train: () => train500('train'), // Algorithm 1, line 1
  scoringData: (stage) => {
    // line 6, fresh every stage
    console.log(`stage ${stage}/14: measuring on 1,000 examples`);
    return [scoring.batch(stage - 1)];
  },
  fineTune: () => train500('fine-tune'), // the single fine-tuning phase
  lossData: () => evaluationBatches(train, 2000),
  validationData: () => evaluationBatches(validation, 2000),
});
console.log(report.deltaLoss, report.gapBeforeFineTuning, report.gapAfterFineTuning);
console.log(report.stages.map((stage) => stage.stepNorm)); // ‖Δθ‖₂ per stage
model.dispose();
