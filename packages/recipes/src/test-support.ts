import type { RecipeInput } from './schema';

/** A small valid recipe for tests. */
export function sampleRecipe(): RecipeInput {
  return {
    version: 1,
    name: 'sample',
    seed: 7,
    backend: 'cpu',
    model: { builtin: 'mlp-784-32-10' },
    data: { dataset: 'mnist', batchSize: 32, trainLimit: 256 },
    training: { steps: 100, optimizer: { type: 'adam', learningRate: 0.001 }, evaluateEvery: 20 },
    parameters: { exclude: [{ pattern: 'dense_2/.*' }] },
    pruning: [
      {
        name: 'main',
        scores: { id: 'magnitude' },
        mask: { id: 'topV', options: { scope: 'global' } },
        schedule: {
          id: 'cubic',
          options: { finalSparsity: 0.8, totalSteps: 100, warmupSteps: 20, cooldownSteps: 20, interval: 10 },
        },
      },
    ],
  };
}
