/**
 * `@fineprune/criterion-snip`: the worked example of a fineprune plugin package. It provides the
 * SNIP connection-sensitivity criterion as a score strategy, and registers it for recipes under the
 * id `community/snip`: list the package under `plugins` in a recipe and the `fineprune` command
 * imports it by name.
 *
 * @packageDocumentation
 */
import { ErrorCodes, FinepruneError, type JsonObject } from '@fineprune/core';
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
  create(options: JsonObject, environment) {
    const { batches, type: _type, ...unknown } = options;
    if (Object.keys(unknown).length > 0) {
      throw new FinepruneError({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: `community/snip: unknown option${Object.keys(unknown).length > 1 ? 's' : ''} ${Object.keys(unknown).join(', ')}.`,
        fix: 'The only option is `batches` (an integer, default 1).',
      });
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
      ...(batches !== undefined ? { batches: batches as number } : {}),
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
