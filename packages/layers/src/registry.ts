import type { ParameterKind } from '@fineprune/core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { sharedState } from '@fineprune/tensor/runtime';

/**
 * Which weights of a layer class can be pruned, and what kind of parameter they are.
 *
 * @example
 * ```ts
 * const spec: PrunableLayerSpec = { weights: ['kernel'], kind: 'dense' };
 * ```
 */
export interface PrunableLayerSpec {
  /**
   * Names of the prunable weights: the property of the layer that holds the `LayerVariable`
   * (`kernel` for `layer.kernel`), or, when there is no such property, the last path segment of the
   * weight's name (`kernel` for `my_layer/kernel`).
   */
  readonly weights: readonly string[];
  /** The kind of the parameters, reported by {@link PrunableParameter.kind}. */
  readonly kind: ParameterKind;
}

const builtIns: ReadonlyArray<readonly [string, PrunableLayerSpec]> = [
  ['Dense', { weights: ['kernel'], kind: 'dense' }],
  ['Conv2D', { weights: ['kernel'], kind: 'conv2d' }],
  ['DepthwiseConv2D', { weights: ['depthwiseKernel'], kind: 'depthwiseConv2d' }],
  ['Embedding', { weights: ['embeddings'], kind: 'embedding' }],
];

/**
 * The registered layer classes, one map per process: a class registered through `import` is found
 * by the adapter loaded through `require` (the ES-module and the CommonJS build of this package).
 */
const registry = sharedState('layers.prunableLayers.v1', () => new Map<string, PrunableLayerSpec>(builtIns));

/**
 * Makes the weights of a layer class prunable by {@link fromLayersModel}: the built-in classes are
 * `Dense` (`kernel`), `Conv2D` (`kernel`), `DepthwiseConv2D` (`depthwiseKernel`) and `Embedding`
 * (`embeddings`). Registering a class again replaces its entry (also for the built-ins). The layer
 * must read its weights through `LayerVariable.read()` inside `call()`, as stock layers do.
 *
 * @param className - the class name the layer reports (`layer.getClassName()`)
 * @param spec - the prunable weights and their kind
 * @throws FinepruneError `INVALID_ARGUMENT` for an empty class name or weight list
 *
 * @example
 * ```ts
 * class Bilinear extends tf.layers.Layer {
 *   static className = 'Bilinear';
 *   // … build() adds a weight 'kernel', call() uses this.kernel.read()
 * }
 * tf.serialization.registerClass(Bilinear);
 * registerPrunableLayer('Bilinear', { weights: ['kernel'], kind: 'bilinear' });
 * ```
 */
export function registerPrunableLayer(className: string, spec: PrunableLayerSpec): void {
  if (typeof className !== 'string' || className.length === 0) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `registerPrunableLayer() needs a layer class name, got ${JSON.stringify(className)}.`,
      fix: "Pass the name that layer.getClassName() returns, for example 'Dense'.",
    });
  }
  const weights = spec?.weights;
  if (
    !Array.isArray(weights) ||
    weights.length === 0 ||
    weights.some((weight) => typeof weight !== 'string' || weight.length === 0)
  ) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `registerPrunableLayer('${className}') needs a non-empty list of weight names.`,
      fix: "Pass { weights: ['kernel'], kind: 'dense' } with the names of the prunable weights.",
    });
  }
  if (typeof spec.kind !== 'string' || spec.kind.length === 0) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `registerPrunableLayer('${className}') needs a parameter kind.`,
      fix: "Pass a kind such as 'dense' or your own name, for example 'bilinear'.",
    });
  }
  registry.set(className, { weights: [...weights], kind: spec.kind });
}

/**
 * The prunable weights of a layer class, or `undefined` when the class is not prunable.
 *
 * @param className - the class name the layer reports (`layer.getClassName()`)
 * @returns the registered spec, if any
 *
 * @example
 * ```ts
 * prunableLayerSpec('Dense'); // { weights: ['kernel'], kind: 'dense' }
 * prunableLayerSpec('Flatten'); // undefined
 * ```
 */
export function prunableLayerSpec(className: string): PrunableLayerSpec | undefined {
  const spec = registry.get(className);
  return spec ? { weights: [...spec.weights], kind: spec.kind } : undefined;
}

/**
 * The names of every layer class that is prunable now, built-in and registered.
 *
 * @returns class names, in registration order
 *
 * @example
 * ```ts
 * prunableLayerClasses(); // ['Dense', 'Conv2D', 'DepthwiseConv2D', 'Embedding', …]
 * ```
 */
export function prunableLayerClasses(): string[] {
  return [...registry.keys()];
}
