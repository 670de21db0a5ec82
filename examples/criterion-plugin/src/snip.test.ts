import { FinepruneError, createPrunableParameter } from '@fineprune/core';
import { createPluginRegistry } from '@fineprune/recipes';
import { fromLayersModel } from '@fineprune/layers';
import { createRandom, setBackend } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { fineprunePlugins, snip, snipDefinition } from './index';

beforeAll(async () => {
  await setBackend('cpu');
});

function setup() {
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({
        units: 4,
        inputShape: [3],
        activation: 'relu',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }),
      }),
      tfl.layers.dense({ units: 2, kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
  const prunable = fromLayersModel(model, { loss: 'sparseCategoricalCrossentropy' });
  const data = {
    batch: (step: number) => ({
      x: tf.tensor2d([
        [1, 2, 3],
        [step, -1, 0.5],
      ]),
      y: tf.tensor1d([0, 1], 'int32'),
    }),
  };
  return { model, prunable, data };
}

describe('community/snip', () => {
  it('scores |W ⊙ ∂L/∂W| of the masked model, averaged over batches', async () => {
    const { model, prunable, data } = setup();
    const strategy = snip({ model: prunable, data, batches: 2 });
    const parameter = prunable.parameters()[0]!;
    const context = { step: 3, model: prunable, random: createRandom(0) };
    const scores = await strategy.compute({ parameter, scores: undefined }, context);
    const expected = tf.tidy(() => {
      const total = [3, 4].map((step) => {
        const batch = data.batch(step);
        const { grads } = tf.variableGrads(
          () => prunable.loss(prunable.forward(batch.x, { training: false }), batch),
          [parameter.weight],
        );
        return tf.abs(tf.mul(grads[parameter.weight.name]!, parameter.weight));
      });
      return tf.div(tf.add(total[0]!, total[1]!), 2);
    });
    expect(Array.from(await scores.data())).toEqual(
      Array.from(await expected.data()).map((value) => expect.closeTo(value, 6)),
    );
    tf.dispose([scores, expected]);
    strategy.onRunEnd?.(context);
    prunable.dispose();
    model.dispose();
  });

  it('is registered for recipes and checks its options', async () => {
    expect(fineprunePlugins.plugins.map((definition) => `${definition.kind}:${definition.id}`)).toEqual([
      'scores:community/snip',
    ]);
    const { model, prunable, data } = setup();
    const environment = { seed: 0, totalSteps: 10, model: prunable, data };
    const built = await snipDefinition.create({ batches: 1 }, environment);
    expect(built.toConfig()).toEqual({ type: 'community/snip', batches: 1 });
    const registry = createPluginRegistry([snipDefinition]);
    const typo = await registry
      .create('scores', 'community/snip', { batch: 2 }, environment)
      .catch((error) => error);
    expect(typo.code).toBe('INVALID_RECIPE');
    expect(typo.message).toMatch(/options\.batch: score strategy "community\/snip" has no option "batch"/);
    expect(typo.fix).toMatch(/Did you mean "batches"\?/);
    // built only to check a recipe, it needs no model or data
    const checked = await registry.create(
      'scores',
      'community/snip',
      { batches: 2 },
      { seed: 0, totalSteps: 1, checkOnly: true },
    );
    expect(checked.toConfig()).toEqual({ type: 'community/snip', batches: 2 });
    expect(() => snipDefinition.create({}, { seed: 0, totalSteps: 1 })).toThrow(FinepruneError);
    expect(() => snip({ model: prunable, data, batches: 0 })).toThrow(/batches must be an integer/);
    expect(() =>
      built.compute(
        {
          parameter: createPrunableParameter({
            name: 'other',
            group: 'x',
            kind: 'dense',
            weight: tf.variable(tf.ones([1])),
          }),
          scores: undefined,
        },
        { step: 0, model: prunable, random: createRandom(0) },
      ),
    ).toThrow(/not a parameter/);
    prunable.dispose();
    model.dispose();
  });
});
