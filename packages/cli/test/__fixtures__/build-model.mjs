// A model module for recipes: `model: { module: ./build-model.mjs, export: buildModel }`.
import * as tfl from '@tensorflow/tfjs-layers';

export function buildModel(seed) {
  return tfl.sequential({
    name: 'from_module',
    layers: [
      tfl.layers.dense({
        name: 'hidden',
        units: 8,
        activation: 'relu',
        inputShape: [784],
        kernelInitializer: tfl.initializers.glorotUniform({ seed }),
      }),
      tfl.layers.dense({
        name: 'logits',
        units: 10,
        kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }),
      }),
    ],
  });
}
