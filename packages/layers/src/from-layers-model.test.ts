import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { FinepruneError } from '@fineprune/core';
import { setBackend } from '@fineprune/tensor';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fromLayersModel, isLayersPrunableModel, type LayersPrunableModel } from './from-layers-model';
import { registerPrunableLayer } from './registry';
import { BACKENDS, expectClose, expectNoLeak, maskHalf, mlp, values } from './test-support';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (FinepruneError.is(error)) return error.code;
    throw error;
  }
  return undefined;
}

/** A functional model: Conv2D → DepthwiseConv2D → Flatten → Dense. */
function convModel(seed = 5): tfl.LayersModel {
  const init = (offset: number) => tfl.initializers.glorotUniform({ seed: seed * 10 + offset });
  const input = tfl.input({ shape: [6, 6, 2], name: 'image' });
  const conv = tfl.layers
    .conv2d({
      name: 'conv',
      filters: 4,
      kernelSize: 3,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: init(1),
    })
    .apply(input) as tfl.SymbolicTensor;
  const depthwise = tfl.layers
    .depthwiseConv2d({ name: 'depthwise', kernelSize: 3, depthMultiplier: 2, depthwiseInitializer: init(2) })
    .apply(conv) as tfl.SymbolicTensor;
  const flat = tfl.layers.flatten({ name: 'flatten' }).apply(depthwise) as tfl.SymbolicTensor;
  const output = tfl.layers
    .dense({ name: 'logits', units: 5, kernelInitializer: init(3) })
    .apply(flat) as tfl.SymbolicTensor;
  return tfl.model({ name: `conv_${seed}`, inputs: input, outputs: output });
}

/** Embedding → Flatten → Dense (softmax). */
function embeddingModel(seed = 9): tfl.LayersModel {
  return tfl.sequential({
    name: `embedding_model_${seed}`,
    layers: [
      tfl.layers.embedding({
        name: 'embed',
        inputDim: 20,
        outputDim: 4,
        inputLength: 5,
        embeddingsInitializer: tfl.initializers.randomNormal({ seed }),
      }),
      tfl.layers.flatten({ name: 'flat' }),
      tfl.layers.dense({
        name: 'classify',
        units: 3,
        activation: 'softmax',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }),
      }),
    ],
  });
}

const wrapped: LayersPrunableModel[] = [];
function wrap(model: tfl.LayersModel, options: Partial<Parameters<typeof fromLayersModel>[1]> = {}) {
  const prunable = fromLayersModel(model, { loss: 'sparseCategoricalCrossentropy', ...options });
  wrapped.push(prunable);
  return prunable;
}

afterEach(() => {
  const models = new Set(wrapped.map((prunable) => prunable.model));
  for (const prunable of wrapped.splice(0)) prunable.dispose();
  for (const model of models) model.dispose();
});

for (const backend of BACKENDS) {
  describe(`fromLayersModel on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('wraps a Sequential MLP: names, groups, kinds, shapes, variables', () => {
      const prunable = wrap(mlp(1));
      expect(prunable.specVersion).toBe(1);
      expect(prunable.name).toBe('mlp_1');
      expect(
        prunable
          .parameters()
          .map((parameter) => [parameter.name, parameter.group, parameter.kind, parameter.shape]),
      ).toEqual([
        ['fc1/kernel', 'fc1', 'dense', [8, 16]],
        ['fc2/kernel', 'fc2', 'dense', [16, 12]],
        ['out/kernel', 'out', 'dense', [12, 3]],
      ]);
      expect(prunable.trainableVariables().map((entry) => entry.name)).toEqual([
        'fc1/kernel',
        'fc1/bias',
        'fc2/kernel',
        'fc2/bias',
        'out/kernel',
        'out/bias',
      ]);
      expect(prunable.frozenVariables()).toEqual([]);
      // The parameter's weight is the raw variable the optimizer trains.
      expect(prunable.parameter('fc1/kernel').weight).toBe(prunable.trainableVariables()[0]!.variable);
      expect(isLayersPrunableModel(prunable)).toBe(true);
    });

    it('wraps a functional model with Conv2D, DepthwiseConv2D and Dense', async () => {
      const prunable = wrap(convModel());
      expect(
        prunable.parameters().map((parameter) => [parameter.name, parameter.kind, parameter.shape]),
      ).toEqual([
        ['conv/kernel', 'conv2d', [3, 3, 2, 4]],
        ['depthwise/depthwiseKernel', 'depthwiseConv2d', [3, 3, 4, 2]],
        ['logits/kernel', 'dense', [128, 5]],
      ]);
      await expectNoLeak(async () => {
        const x = tf.randomNormal([2, 6, 6, 2], 0, 1, 'float32', 1);
        const y = tf.tidy(() => prunable.forward(x, { training: false }) as tf.Tensor);
        expect(y.shape).toEqual([2, 5]);
        tf.dispose([x, y]);
      });
    });

    it('wraps Embedding + Flatten + Dense and freezes the embeddings', () => {
      const prunable = wrap(embeddingModel(), { freeze: ['embed'] });
      expect(
        prunable.parameters().map((parameter) => [parameter.name, parameter.kind, parameter.shape]),
      ).toEqual([
        ['embed/embeddings', 'embedding', [20, 4]],
        ['classify/kernel', 'dense', [20, 3]],
      ]);
      expect(prunable.frozenVariables().map((entry) => entry.name)).toEqual(['embed/embeddings']);
      expect(prunable.trainableVariables().map((entry) => entry.name)).toEqual([
        'classify/kernel',
        'classify/bias',
      ]);
    });

    it('selects with include and exclude (names, patterns, predicates) and freezes by pattern', () => {
      expect(
        wrap(mlp(2), { include: 'fc2' })
          .parameters()
          .map((parameter) => parameter.name),
      ).toEqual(['fc2/kernel']);
      expect(
        wrap(mlp(3), { include: ['fc1/kernel', 'out'] })
          .parameters()
          .map((parameter) => parameter.name),
      ).toEqual(['fc1/kernel', 'out/kernel']);
      expect(
        wrap(mlp(4), { exclude: /^out\// })
          .parameters()
          .map((parameter) => parameter.name),
      ).toEqual(['fc1/kernel', 'fc2/kernel']);
      expect(
        wrap(convModel(6), { include: (parameter) => parameter.kind !== 'dense' })
          .parameters()
          .map((parameter) => parameter.name),
      ).toEqual(['conv/kernel', 'depthwise/depthwiseKernel']);
      // Global patterns are stateful in RegExp.test(); they still select every match.
      expect(wrap(mlp(10), { include: /kernel/g }).parameters()).toHaveLength(3);
      const frozen = wrap(mlp(5), { freeze: /bias$/g });
      expect(frozen.frozenVariables().map((entry) => entry.name)).toEqual([
        'fc1/bias',
        'fc2/bias',
        'out/bias',
      ]);
      expect(frozen.trainableVariables().map((entry) => entry.name)).toEqual([
        'fc1/kernel',
        'fc2/kernel',
        'out/kernel',
      ]);
    });

    it('reports errors: unsupported layer, unknown name, nothing prunable, already wrapped', () => {
      const model = convModel(7);
      expect(
        codeOf(() => fromLayersModel(model, { loss: 'meanSquaredError', include: ['conv', 'flatten'] })),
      ).toBe('UNSUPPORTED_LAYER');
      expect(codeOf(() => fromLayersModel(model, { loss: 'meanSquaredError', include: 'logits/bias' }))).toBe(
        'UNSUPPORTED_LAYER',
      );
      expect(
        codeOf(() => fromLayersModel(model, { loss: 'meanSquaredError', include: 'no_such_layer' })),
      ).toBe('INVALID_ARGUMENT');
      expect(
        codeOf(() => fromLayersModel(model, { loss: 'meanSquaredError', freeze: 'no_such_layer' })),
      ).toBe('INVALID_ARGUMENT');
      expect(codeOf(() => fromLayersModel(model, { loss: 'meanSquaredError', include: /nothing/ }))).toBe(
        'NO_PRUNABLE_PARAMETERS',
      );

      const plain = tfl.sequential({
        name: 'no_prunable',
        layers: [
          tfl.layers.flatten({ name: 'just_flatten', inputShape: [2, 2] }),
          tfl.layers.batchNormalization({ name: 'norm' }),
        ],
      });
      try {
        fromLayersModel(plain, { loss: 'meanSquaredError' });
        expect.unreachable();
      } catch (error) {
        expect(FinepruneError.is(error) && error.code).toBe('NO_PRUNABLE_PARAMETERS');
        expect((error as FinepruneError).fix).toContain('just_flatten (Flatten), norm (BatchNormalization)');
      }
      plain.dispose();

      const prunable = wrap(model);
      expect(codeOf(() => fromLayersModel(model, { loss: 'meanSquaredError' }))).toBe('INVALID_ARGUMENT');
      prunable.unwrap();
      wrap(model); // can be wrapped again after unwrap()

      expect(codeOf(() => fromLayersModel(tfl.sequential(), { loss: 'meanSquaredError' }))).toBe(
        'NO_PRUNABLE_PARAMETERS',
      );
      // Failed attempts leave no tensor behind (the lazy masks of unchosen candidates are freed).
      const before = tf.memory().numTensors;
      codeOf(() =>
        fromLayersModel(model, { loss: 'meanSquaredError', include: (parameter) => parameter.mask.size < 0 }),
      );
      expect(tf.memory().numTensors).toBe(before);
    });

    it('computes Dense forward and gradients like the stock layer (within 1e-5)', async () => {
      const build = (name: string) => {
        const input = tfl.input({ shape: [3, 8], name: `${name}_in` });
        const a = tfl.layers
          .dense({ name: `${name}_a`, units: 6, activation: 'relu' })
          .apply(input) as tfl.SymbolicTensor;
        const b = tfl.layers
          .dense({ name: `${name}_b`, units: 5, useBias: false })
          .apply(a) as tfl.SymbolicTensor;
        const flat = tfl.layers.flatten().apply(b) as tfl.SymbolicTensor;
        const c = tfl.layers
          .dense({ name: `${name}_c`, units: 4, activation: 'softmax' })
          .apply(flat) as tfl.SymbolicTensor;
        return tfl.model({ inputs: input, outputs: c });
      };
      const stock = build('stock');
      const pruned = build('pruned');
      pruned.setWeights(stock.getWeights());
      expect(wrap(pruned, { loss: 'categoricalCrossentropy' }).parameters()).toHaveLength(3);
      const x = tf.randomNormal([4, 3, 8], 0, 1, 'float32', 11);
      const target = tf.oneHot(tf.tensor1d([0, 1, 2, 3], 'int32'), 4);

      await expectNoLeak(async () => {
        const expected = stock.predict(x) as tf.Tensor;
        const actual = pruned.predict(x) as tf.Tensor;
        await expectClose(actual, expected, 1e-5);
        tf.dispose([expected, actual]);
      });

      const gradients = (model: tfl.LayersModel) =>
        tf.variableGrads(
          () =>
            tf.tidy(() => {
              const output = model.apply(x, { training: true }) as tf.Tensor;
              return tf.neg(tf.sum(tf.mul(tf.log(output), target))) as tf.Scalar;
            }),
          model.trainableWeights.map((weight) => weight.read() as tf.Variable),
        );
      const expected = gradients(stock);
      const actual = gradients(pruned);
      await expectClose(actual.value, expected.value, 1e-5);
      const stockNames = stock.trainableWeights.map((weight) => (weight.read() as tf.Variable).name);
      const prunedNames = pruned.trainableWeights.map((weight) => (weight.read() as tf.Variable).name);
      expect(Object.keys(actual.grads)).toHaveLength(stockNames.length);
      for (const [index, name] of prunedNames.entries()) {
        await expectClose(actual.grads[name]!, expected.grads[stockNames[index]!]!, 1e-5);
      }
      tf.dispose([
        expected.value,
        actual.value,
        ...Object.values(expected.grads),
        ...Object.values(actual.grads),
      ]);

      // The input gradient too (the fast op differentiates in x).
      const inputGradient = (model: tfl.LayersModel) =>
        tf.grad((input: tf.Tensor) => tf.sum(model.apply(input) as tf.Tensor))(x);
      const [stockDx, prunedDx] = [inputGradient(stock), inputGradient(pruned)];
      await expectClose(prunedDx, stockDx, 1e-5);
      tf.dispose([stockDx, prunedDx, x, target]);
      stock.dispose();
    });

    it('masked weights contribute nothing: wild values under zero masks change no prediction', async () => {
      for (const model of [mlp(8), convModel(8), embeddingModel(8)]) {
        const prunable = wrap(model);
        const x =
          model.inputs[0]!.shape.length === 2 && model.inputs[0]!.shape[1] === 5
            ? tf.tensor2d(
                [
                  [0, 3, 19, 7, 7],
                  [1, 2, 3, 4, 5],
                ],
                [2, 5],
                'int32',
              )
            : tf.randomNormal([3, ...(model.inputs[0]!.shape.slice(1) as number[])], 0, 1, 'float32', 2);
        await expectNoLeak(async () => {
          for (const parameter of prunable.parameters()) maskHalf(parameter.mask);
          const before = model.predict(x) as tf.Tensor;
          for (const parameter of prunable.parameters()) {
            tf.tidy(() => {
              const noise = tf.randomUniform(parameter.shape as number[], -1e3, 1e3, 'float32', 4);
              const keep = parameter.mask;
              parameter.weight.assign(tf.add(tf.mul(parameter.weight, keep), tf.mul(noise, tf.sub(1, keep))));
            });
          }
          const after = model.predict(x) as tf.Tensor;
          expect(await values(after)).toEqual(await values(before));
          // Sanity: unmasking makes the wild values visible.
          const parameter = prunable.parameters()[0]!;
          const saved = tf.clone(parameter.mask);
          tf.tidy(() => parameter.mask.assign(tf.onesLike(parameter.mask)));
          const unmasked = model.predict(x) as tf.Tensor;
          expect(await values(unmasked)).not.toEqual(await values(before));
          parameter.mask.assign(saved);
          tf.dispose([before, after, unmasked, saved]);
        });
        x.dispose();
      }
    });

    it('stock fit() trains through the masks: masked raw weights get no gradient', async () => {
      const model = mlp(12);
      const prunable = wrap(model);
      for (const parameter of prunable.parameters()) maskHalf(parameter.mask, 8);
      const kernel = prunable.parameter('fc1/kernel');
      const [mask, before] = [await values(kernel.mask), await values(kernel.weight)];
      model.compile({ optimizer: tf.train.sgd(0.5), loss: 'meanSquaredError' });
      const x = tf.randomNormal([16, 8], 0, 1, 'float32', 9);
      const y = tf.randomNormal([16, 3], 0, 1, 'float32', 10);
      await expectNoLeak(async () => {
        await model.fit(x, y, { epochs: 2, batchSize: 8, verbose: 0 });
      });
      const after = await values(kernel.weight);
      let moved = 0;
      for (let index = 0; index < mask.length; index += 1) {
        if (mask[index] === 0) expect(after[index]).toBe(before[index]);
        else if (after[index] !== before[index]) moved += 1;
      }
      expect(moved).toBeGreaterThan(0);
      tf.dispose([x, y]);
    });

    it('unwrap() restores the stock methods; the raw weights are used again', async () => {
      const model = mlp(9);
      const prunable = fromLayersModel(model, { loss: 'sparseCategoricalCrossentropy' });
      const layer = model.layers[0]!;
      expect(Object.hasOwn(layer, 'call')).toBe(true);
      const x = tf.randomNormal([2, 8], 0, 1, 'float32', 3);
      const raw = model.predict(x) as tf.Tensor;
      maskHalf(prunable.parameter('fc1/kernel').mask);
      const masked = model.predict(x) as tf.Tensor;
      expect(await values(masked)).not.toEqual(await values(raw));
      const before = tf.memory().numTensors;
      expect(prunable.unwrap()).toBe(model);
      expect(tf.memory().numTensors).toBe(before - 3); // the three masks
      expect(Object.hasOwn(layer, 'call')).toBe(false);
      expect(Object.hasOwn(model.weights[0]!, 'read')).toBe(false);
      const again = model.predict(x) as tf.Tensor;
      expect(await values(again)).toEqual(await values(raw));
      expect(codeOf(() => prunable.parameters())).toBe('DISPOSED');
      prunable.dispose(); // no-op after unwrap
      tf.dispose([x, raw, masked, again]);
      model.dispose();
    });

    it('prunes a registered custom layer class', async () => {
      class Scale extends tfl.layers.Layer {
        static className = `TestScale_${backend}`;
        private factors: tfl.LayerVariable | null = null;
        override build(inputShape: tfl.Shape | tfl.Shape[]): void {
          const shape = inputShape as tfl.Shape;
          this.factors = this.addWeight(
            'factors',
            [shape[shape.length - 1]!],
            'float32',
            tfl.initializers.ones(),
          );
          this.built = true;
        }
        override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
          const input = Array.isArray(inputs) ? inputs[0]! : inputs;
          return tf.mul(input, this.factors!.read());
        }
      }
      tf.serialization.registerClass(Scale);
      const model = tfl.sequential({ layers: [new Scale({ name: 'scale', inputShape: [4] })] });
      expect(codeOf(() => fromLayersModel(model, { loss: 'meanSquaredError', include: 'scale' }))).toBe(
        'UNSUPPORTED_LAYER',
      );
      registerPrunableLayer(`TestScale_${backend}`, { weights: ['factors'], kind: 'scale' });
      const prunable = wrap(model, { loss: 'meanSquaredError' });
      expect(prunable.parameters().map((parameter) => [parameter.name, parameter.kind])).toEqual([
        ['scale/factors', 'scale'],
      ]);
      prunable.parameter('scale/factors').mask.assign(tf.tensor1d([1, 0, 1, 0]));
      const y = model.predict(tf.ones([1, 4])) as tf.Tensor;
      expect(await values(y)).toEqual([1, 0, 1, 0]);
      y.dispose();
    });

    it('wraps nested models and reads the softmax of the output layer', async () => {
      const inner = tfl.sequential({
        name: 'inner',
        layers: [tfl.layers.dense({ name: 'inner_dense', inputShape: [4], units: 3 })],
      });
      const input = tfl.input({ shape: [4] });
      const hidden = inner.apply(input) as tfl.SymbolicTensor;
      const output = tfl.layers
        .dense({ name: 'outer_dense', units: 2, activation: 'softmax' })
        .apply(hidden) as tfl.SymbolicTensor;
      const model = tfl.model({ inputs: input, outputs: output });
      const prunable = wrap(model);
      expect(prunable.parameters().map((parameter) => parameter.name)).toEqual([
        'inner_dense/kernel',
        'outer_dense/kernel',
      ]);
      // Softmax output: the cross-entropy is computed from the probabilities.
      await expectNoLeak(async () => {
        const probabilities = tf.tensor2d([
          [0.9, 0.1],
          [0.2, 0.8],
        ]);
        const batch = { x: tf.zeros([2, 4]), y: tf.tensor1d([0, 1]) };
        const loss = prunable.loss(probabilities, batch);
        expect((await loss.data())[0]).toBeCloseTo(-(Math.log(0.9) + Math.log(0.8)) / 2, 5);
        tf.dispose([probabilities, loss, batch.x, batch.y]);
      });
    });
  });
}
