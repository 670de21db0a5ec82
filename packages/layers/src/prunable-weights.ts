import type * as tfl from '@tensorflow/tfjs-layers';
import type { ParameterKind } from '@fineprune/core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { prunableLayerSpec } from './registry';

/**
 * A layer that declares its own prunable weights, as tfmot's `PrunableLayer` does: a custom layer
 * class implements `getPrunableWeights()` and {@link fromLayersModel} prunes those weights, with no
 * registration. A declaration wins over a {@link registerPrunableLayer} entry for the same class.
 *
 * @example
 * ```ts
 * class Bilinear extends tf.layers.Layer implements PrunableLayer {
 *   static className = 'Bilinear';
 *   readonly prunableKind = 'bilinear';
 *   private kernel!: tf.LayerVariable;
 *   build() { this.kernel = this.addWeight('kernel', [4, 4], 'float32', tf.initializers.glorotUniform({})); }
 *   getPrunableWeights() { return [this.kernel]; }
 *   // … call() reads this.kernel.read()
 * }
 * ```
 */
export interface PrunableLayer {
  /** The layer's weights to prune (a subset of `layer.weights`); the others stay dense. */
  getPrunableWeights(): readonly tfl.LayerVariable[];
  /** The kind its parameters report; default the class name with a lower-case first letter. */
  readonly prunableKind?: ParameterKind;
}

/**
 * True when the layer declares its prunable weights ({@link PrunableLayer}).
 *
 * @example
 * ```ts
 * if (declaresPrunableWeights(layer)) console.log(layer.getPrunableWeights().map((weight) => weight.name));
 * ```
 */
export function declaresPrunableWeights(layer: object): layer is PrunableLayer {
  return typeof (layer as Partial<PrunableLayer>).getPrunableWeights === 'function';
}

/** The prunable weights of one layer, by variable, with the name each parameter takes. */
export interface LayerPrunables {
  readonly kind: ParameterKind;
  /** Each prunable weight with the attribute its parameter is named after (`${layer.name}/${attribute}`). */
  readonly weights: ReadonlyMap<tfl.LayerVariable, string>;
}

function lastSegment(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}

function lowerFirst(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

function declared(layer: tfl.layers.Layer & PrunableLayer): LayerPrunables {
  const className = layer.getClassName();
  const weights = new Map<tfl.LayerVariable, string>();
  for (const variable of layer.getPrunableWeights()) {
    if (!layer.weights.includes(variable)) {
      throw new FinepruneError({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: `getPrunableWeights() of layer "${layer.name}" (${className}) returns a weight that is not one of the layer's own.`,
        fix: `Return weights from the layer's addWeight(); its weights are: ${layer.weights.map((weight) => weight.originalName).join(', ')}.`,
      });
    }
    weights.set(variable, lastSegment(variable.originalName));
  }
  return { kind: layer.prunableKind ?? prunableLayerSpec(className)?.kind ?? lowerFirst(className), weights };
}

function registered(layer: tfl.layers.Layer): LayerPrunables | undefined {
  const className = layer.getClassName();
  const spec = prunableLayerSpec(className);
  if (!spec) return undefined;
  const weights = new Map<tfl.LayerVariable, string>();
  for (const attribute of spec.weights) {
    const direct = (layer as unknown as Record<string, unknown>)[attribute];
    const variable =
      layer.weights.find((weight) => weight === direct) ??
      layer.weights.find((weight) => lastSegment(weight.originalName) === attribute);
    if (!variable) {
      throw new FinepruneError({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: `Layer "${layer.name}" (${className}) has no weight "${attribute}".`,
        fix: `Fix the registerPrunableLayer('${className}') entry; the layer's weights are: ${layer.weights.map((weight) => weight.originalName).join(', ')}.`,
      });
    }
    weights.set(variable, attribute);
  }
  return { kind: spec.kind, weights };
}

/**
 * Which weights of a layer can be pruned: those it declares ({@link PrunableLayer}), else those of
 * its class's registry entry, else none (`undefined`).
 *
 * @example
 * ```ts
 * prunableWeightsOf(denseLayer)?.weights; // Map { kernel variable → 'kernel' }
 * ```
 */
export function prunableWeightsOf(layer: tfl.layers.Layer): LayerPrunables | undefined {
  return declaresPrunableWeights(layer) ? declared(layer) : registered(layer);
}
