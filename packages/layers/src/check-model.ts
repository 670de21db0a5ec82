import type * as tfl from '@tensorflow/tfjs-layers';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';

const LOAD_FIX =
  'Pass a model from tf.sequential(), tf.model() or `await tf.loadLayersModel(…)` (fileSystem(directory) in Node).';

function unsupported(message: string, fix: string, received: string): never {
  throw new FinepruneError({ code: ErrorCodes.UNSUPPORTED_MODEL, message, fix, details: { received } });
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  const name = (value as { constructor?: { name?: string } }).constructor?.name;
  return name && name !== 'Object' ? `a ${name}` : 'a plain object';
}

/**
 * Throws `UNSUPPORTED_MODEL` with the cause and the fix unless `value` is a built `tf.LayersModel`:
 * a graph model, a promise that was not awaited, a path, a single layer, a model that is already
 * wrapped, or anything else.
 *
 * @example
 * ```ts
 * assertLayersModel(await tf.loadGraphModel(url), 'fromLayersModel()'); // throws UNSUPPORTED_MODEL
 * ```
 */
export function assertLayersModel(value: unknown, caller: string): asserts value is tfl.LayersModel {
  const object = value as Record<string, unknown> | null | undefined;
  if (object && Array.isArray(object.layers) && Array.isArray(object.weights)) return;
  if (object === undefined || object === null) {
    unsupported(`${caller} received ${object} instead of a model.`, LOAD_FIX, String(object));
  }
  if (typeof object === 'string') {
    unsupported(
      `${caller} received the string ${JSON.stringify((object as string).slice(0, 120))}, not a model.`,
      'Load the model first: `const model = await tf.loadLayersModel(fileSystem(directory))` in Node, or `tf.loadLayersModel(url)`.',
      'string',
    );
  }
  if (typeof object.then === 'function') {
    unsupported(
      `${caller} received a Promise: the model is still loading.`,
      'Await it: `const model = await tf.loadLayersModel(…)`, then wrap the model.',
      'Promise',
    );
  }
  if (typeof object.executeAsync === 'function' && typeof object.execute === 'function') {
    unsupported(
      `${caller} received a tf.GraphModel (format "graph-model", a frozen TensorFlow graph from tensorflowjs_converter): it has no layers and no trainable weights to prune.`,
      'Prune the Keras model instead: convert it with `tensorflowjs_converter --input_format keras --output_format tfjs_layers_model` (or save it from TF.js with model.save()) and load it with tf.loadLayersModel().',
      'GraphModel',
    );
  }
  if (object.specVersion !== undefined && typeof object.parameters === 'function') {
    unsupported(
      `${caller} received a PrunableModel: the model is wrapped already.`,
      'Pass it to pruneOnce() or the Pruner as it is; its tf.LayersModel is `prunable.model`.',
      'PrunableModel',
    );
  }
  if (typeof object.getClassName === 'function' && typeof object.apply === 'function') {
    const className = (object.getClassName as () => string)();
    unsupported(
      `${caller} received a single ${className} layer, not a model.`,
      'Put the layer in a model: tf.sequential({ layers: [layer] }) or tf.model({ inputs, outputs }).',
      'Layer',
    );
  }
  unsupported(
    `${caller} received ${describeValue(object)}, not a tf.LayersModel.`,
    LOAD_FIX,
    describeValue(object),
  );
}
