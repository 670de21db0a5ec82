import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { adam, type Batch, type PrunableModel } from '@fineprune/core';

/** The 784-300-100-10 ReLU MLP of the step benchmarks, seeded Glorot initialisation, logits out. */
export function benchmarkMlp(seed: number): tfl.Sequential {
  return tfl.sequential({
    layers: [
      tfl.layers.dense({
        units: 300,
        activation: 'relu',
        inputShape: [784],
        kernelInitializer: tfl.initializers.glorotUniform({ seed }),
      }),
      tfl.layers.dense({
        units: 100,
        activation: 'relu',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }),
      }),
      tfl.layers.dense({ units: 10, kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 2 }) }),
    ],
  });
}

/** The dense baseline of the step benchmarks: forward, loss, gradients, Adam 1e-3, no masks at all. */
export function denseTrainingLoop(model: PrunableModel) {
  const optimizer = adam({ learningRate: 1e-3 });
  let step = 0;
  return {
    async train(batch: Batch) {
      const variables = model.trainableVariables();
      const { value, grads } = tf.variableGrads(
        () => model.loss(model.forward(batch.x, { training: true }), batch),
        variables.map((entry) => entry.variable),
      );
      optimizer.apply(
        variables.map(({ name, variable }) => ({ name, variable, gradient: grads[variable.name]! })),
        step,
      );
      step += 1;
      await value.data();
      value.dispose();
      tf.dispose(Object.values(grads));
    },
    dispose: () => optimizer.dispose(),
  };
}
