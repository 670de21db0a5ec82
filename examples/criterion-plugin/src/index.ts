/**
 * `@fineprune/criterion-snip`: the worked example of a fineprune plugin package. It provides the
 * SNIP connection-sensitivity criterion as a score strategy, and registers it for recipes under the
 * id `community/snip`: list the package under `plugins` in a recipe and the `fineprune` command
 * imports it by name.
 *
 * @packageDocumentation
 */
import { ErrorCodes, FinepruneError, type JsonObject, type ScoreStrategy } from '@fineprune/core';
import { definePlugin, type PluginPackage } from '@fineprune/recipes';
import { snip } from './snip';

export { snip, type SnipOptions } from './snip';

/**
 * The recipe registration of {@link snip}: `scores: { id: community/snip, options: { batches: 2 } }`.
 *
 * @example
 * ```ts
 * registry.register(snipDefinition);
 * ```
 */
export const snipDefinition = definePlugin({
  kind: 'scores',
  id: 'community/snip',
  description: 'SNIP connection sensitivity |W ⊙ ∂L/∂W| measured on training batches (Lee et al., 2019)',
  // The registry checks recipes against this schema: a misspelled `batchs` is refused with "Did you mean \"batches\"?".
  options: {
    batches: {
      type: 'integer',
      minimum: 1,
      maximum: 64,
      description: 'training batches averaged, default 1',
    },
  },
  create(options: JsonObject, environment): ScoreStrategy {
    const batches = options.batches as number | undefined;
    // `fineprune validate` (and a run, before it loads data) builds plugins only to check them.
    if (environment.checkOnly) {
      return {
        id: 'community/snip',
        learnable: false,
        compute: () => {
          throw new FinepruneError({
            code: ErrorCodes.INVALID_ARGUMENT,
            message: 'community/snip was built only to check a recipe.',
            fix: 'Create it through a recipe run (fineprune run).',
          });
        },
        toConfig: () => ({ type: 'community/snip', batches: batches ?? 1 }),
      };
    }
    if (!environment.model || !environment.data) {
      throw new FinepruneError({
        code: ErrorCodes.INVALID_ARGUMENT,
        message:
          'community/snip measures scores on data, but it was created without a model or training data.',
        fix: 'Create it through a recipe run (fineprune run), which provides both.',
      });
    }
    return snip({
      model: environment.model,
      data: environment.data,
      ...(batches !== undefined ? { batches } : {}),
    });
  },
});

/**
 * What the `fineprune` command looks for when it imports this package by name.
 *
 * @example
 * ```ts
 * await loadPluginPackage(registry, '@fineprune/criterion-snip'); // reads fineprunePlugins
 * ```
 */
export const fineprunePlugins: PluginPackage = {
  name: '@fineprune/criterion-snip',
  plugins: [snipDefinition],
};
