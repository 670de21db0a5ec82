// A small CNN for 28 × 28 grey images given as flat rows of 784 values (as data.images serves them):
// `model: { module: ./build-cnn.mjs, export: buildCnn }`. The recipe's seed makes its initial weights.
import * as tfl from '@tensorflow/tfjs-layers';

export function buildCnn(seed) {
  const init = (offset) => tfl.initializers.glorotUniform({ seed: seed + offset });
  return tfl.sequential({
    name: 'small_cnn',
    layers: [
      tfl.layers.reshape({ name: 'image', targetShape: [28, 28, 1], inputShape: [784] }),
      tfl.layers.conv2d({
        name: 'conv1',
        filters: 16,
        kernelSize: 5,
        activation: 'relu',
        kernelInitializer: init(0),
      }),
      tfl.layers.maxPooling2d({ name: 'pool1', poolSize: 2 }),
      tfl.layers.conv2d({
        name: 'conv2',
        filters: 32,
        kernelSize: 5,
        activation: 'relu',
        kernelInitializer: init(1),
      }),
      tfl.layers.maxPooling2d({ name: 'pool2', poolSize: 2 }),
      tfl.layers.flatten({ name: 'flat' }),
      tfl.layers.dense({ name: 'hidden', units: 64, activation: 'relu', kernelInitializer: init(2) }),
      tfl.layers.dense({ name: 'logits', units: 10, kernelInitializer: init(3) }),
    ],
  });
}
