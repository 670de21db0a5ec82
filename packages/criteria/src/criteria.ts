import * as tf from '@tensorflow/tfjs-core';
import type {
  Batch,
  JsonObject,
  PluginContext,
  PrunableModel,
  PrunableParameter,
  ScoreStrategy,
} from '@fineprune/core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { createRandom } from '@fineprune/tensor/random';
import { type GaussNewtonMethod, type MeasurementNeeds, type Measurements, measure } from './measure';

/**
 * What a saliency formula receives for one parameter: θ = W ⊙ M and the measurements.
 *
 * @example
 * ```ts
 * const saliency = ({ theta }: SaliencyInput) => tf.square(theta);
 * ```
 */
export interface SaliencyInput {
  readonly parameter: PrunableParameter;
  /** The effective weight θ = W ⊙ M. */
  readonly theta: tf.Tensor;
  readonly measurements: Measurements;
  /** A uniform [0, 1) random source seeded by the criterion (for `random`). */
  readonly random: { next(): number };
}

/**
 * Options every criterion accepts.
 *
 * @example
 * ```ts
 * const options: CriterionOptions = { lambda: 0.01 };
 * ```
 */
export interface CriterionOptions {
  /**
   * Step-size penalty λ ≥ 0: the saliency becomes s + ½λθ² (Section 3.2). λ = 0 leaves the
   * criterion unchanged; a large λ turns it into MP. Default 0.
   */
  lambda?: number;
  /**
   * Where the criterion draws scoring batches when it is used by the core `Pruner` (which calls
   * only `compute`): it measures once per step on these batches. The staged runner measures
   * explicitly and does not need it; after an explicit `measure()` the criterion keeps those
   * measurements until `dispose()`. The criterion disposes the batches it receives.
   */
  data?: (context: PluginContext) => Iterable<Batch>;
}

/**
 * Options of the criteria that use the Gauss–Newton diagonal (OBD, QM).
 *
 * @example
 * ```ts
 * const options: CurvatureCriterionOptions = { lambda: 0, gaussNewton: 'sampled', seed: 1 };
 * ```
 */
export interface CurvatureCriterionOptions extends CriterionOptions {
  /** How G_kk is measured; default `exact`. See {@link GaussNewtonMethod}. */
  gaussNewton?: GaussNewtonMethod;
  /** Seed of the sampled Gauss–Newton labels; default 0. */
  seed?: number;
}

/**
 * A score strategy measured on data: `measure()` on scoring batches, then `compute()` returns the
 * saliency of each parameter (the predicted change of the loss when a weight is removed, plus the
 * ½λθ² step-size penalty). Larger saliency = more important = kept; the mask keeps the largest.
 *
 * @example
 * ```ts
 * const criterion = quadraticModel({ lambda: 0 });
 * await criterion.measure(model, scoringBatches);
 * const saliency = await criterion.compute({ parameter, scores: undefined }, context);
 * criterion.dispose();
 * ```
 */
export interface SaliencyCriterion extends ScoreStrategy {
  readonly learnable: false;
  /** What `measure()` computes. */
  readonly needs: MeasurementNeeds;
  /** The λ of the step-size penalty. */
  readonly lambda: number;
  /** Measures gradients / curvature on `batches` (not disposed), replacing earlier measurements. */
  measure(model: PrunableModel, batches: Iterable<Batch>): Promise<void>;
  /** The latest measurements, if any. */
  readonly measurements: Measurements | undefined;
  /** Frees the measurements. */
  dispose(): void;
}

/**
 * How a criterion turns θ and measurements into the predicted loss change.
 *
 * @example
 * ```ts
 * const definition: CriterionDefinition = { id: 'mp-copy', needs: {}, saliency: ({ theta }) => tf.square(theta) };
 * ```
 */
export interface CriterionDefinition {
  /** Plugin id, for example `qm` or `my-company/fisher`. */
  id: string;
  needs: MeasurementNeeds;
  /** The saliency before the λ penalty; runs inside `tf.tidy`. */
  saliency(input: SaliencyInput): tf.Tensor;
  /** Extra options reported by `toConfig()`. */
  config?: JsonObject;
  gaussNewton?: GaussNewtonMethod;
  seed?: number;
}

function checkLambda(lambda: number): void {
  if (!(lambda >= 0 && Number.isFinite(lambda))) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `The step-size penalty λ must be a finite number ≥ 0, got ${lambda}.`,
      fix: 'Use λ = 0 for the plain criterion, or a positive value such as 0.1.',
    });
  }
}

function missing(id: string, what: string, parameter: string): never {
  throw new FinepruneError({
    code: ErrorCodes.NOT_MEASURED,
    message: `Criterion "${id}" has no ${what} for parameter "${parameter}".`,
    fix: 'Call criterion.measure(model, batches) first (or pass `data` so it measures itself), on the model that owns this parameter.',
    details: { parameter },
  });
}

/** Reads one measured tensor, or throws `NOT_MEASURED`. */
function measured(
  input: SaliencyInput,
  id: string,
  key: 'gradient' | 'gaussNewton' | 'hessianGradient' | 'synflow',
): tf.Tensor {
  const tensor = input.measurements[key]?.get(input.parameter.name);
  if (!tensor) missing(id, key, input.parameter.name);
  return tensor;
}

/**
 * Builds a {@link SaliencyCriterion} from a definition: the one function to call when adding a
 * criterion (see the package README's guide).
 *
 * @example
 * ```ts
 * const fisherLike = defineCriterion(
 *   { id: 'my/gradient-squared', needs: { gradient: true },
 *     saliency: ({ theta, measurements, parameter }) =>
 *       tf.mul(tf.square(measurements.gradient!.get(parameter.name)!), tf.square(theta)) },
 *   { lambda: 0 },
 * );
 * ```
 */
export function defineCriterion(
  definition: CriterionDefinition,
  options: CriterionOptions = {},
): SaliencyCriterion {
  const lambda = options.lambda ?? 0;
  checkLambda(lambda);
  const seed = definition.seed ?? 0;
  const random = createRandom(seed);
  let current: Measurements | undefined;
  // The step of the last self-measurement, or 'explicit' after measure(): then the criterion
  // keeps those measurements and does not measure itself until dispose().
  let measuredAtStep: number | 'explicit' | undefined;
  const doMeasure = async (model: PrunableModel, batches: Iterable<Batch>) => {
    const next = await measure(model, batches, definition.needs, {
      ...(definition.gaussNewton ? { gaussNewton: definition.gaussNewton } : {}),
      random,
    });
    current?.dispose();
    current = next;
  };
  const criterion: SaliencyCriterion = {
    id: definition.id,
    learnable: false,
    needs: definition.needs,
    lambda,
    get measurements() {
      return current;
    },
    measure: async (model, batches) => {
      await doMeasure(model, batches);
      measuredAtStep = 'explicit';
    },
    async compute({ parameter }, context) {
      const needsData = Object.values(definition.needs).some(Boolean);
      if (needsData && options.data && measuredAtStep !== context.step && measuredAtStep !== 'explicit') {
        const batches = [...options.data(context)];
        try {
          await doMeasure(context.model, batches);
        } finally {
          tf.dispose(batches.flatMap((batch) => [batch.x, batch.y]) as tf.TensorContainer);
        }
        measuredAtStep = context.step;
      }
      if (needsData && !current) missing(definition.id, 'measurements', parameter.name);
      const empty: Measurements = { loss: Number.NaN, examples: 0, dispose: () => {} };
      return tf.tidy(() => {
        const theta = tf.mul(parameter.weight, parameter.mask);
        const base = definition.saliency({ parameter, theta, measurements: current ?? empty, random });
        // Step-size penalty of Section 3.2: s + ½λθ².
        return lambda === 0 ? base : tf.add(base, tf.mul(tf.square(theta), lambda / 2));
      });
    },
    toConfig: () => ({
      lambda,
      ...(definition.gaussNewton ? { gaussNewton: definition.gaussNewton, seed } : {}),
      ...(definition.config ?? {}),
    }),
    dispose: () => {
      current?.dispose();
      current = undefined;
      measuredAtStep = undefined;
    },
  };
  return criterion;
}

/**
 * Options of {@link magnitudeCriterion}.
 *
 * @example
 * ```ts
 * const options: MagnitudeCriterionOptions = { saliency: 'half-square' }; // the reference code's ½θ²
 * ```
 */
export interface MagnitudeCriterionOptions extends CriterionOptions {
  /**
   * `square` (default): s = θ², as Eq. 4 writes it. `half-square`: s = ½θ², the scale of the
   * loss-modelling reference code (the predicted loss change with the curvature taken as 1). Both
   * rank the weights the same way, also with λ, so the masks are the same; only the saliency values
   * and their balance against ½λθ² differ.
   */
  saliency?: 'square' | 'half-square';
}

/**
 * Magnitude pruning (MP): s_k = θ_k² (Eq. 4), or ½θ_k² with `saliency: 'half-square'`. Needs no
 * data; invariant to λ and to the stages.
 *
 * @example
 * ```ts
 * const mp = magnitudeCriterion();
 * ```
 */
export function magnitudeCriterion(options: MagnitudeCriterionOptions = {}): SaliencyCriterion {
  const saliency = options.saliency ?? 'square';
  if (saliency !== 'square' && saliency !== 'half-square') {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `mp: saliency must be "square" or "half-square", got ${JSON.stringify(saliency)}.`,
      fix: 'Use "square" (θ², Eq. 4, the default) or "half-square" (½θ², the reference code).',
    });
  }
  const scale = saliency === 'square' ? 1 : 0.5;
  return defineCriterion(
    {
      id: 'mp',
      needs: {},
      // Eq. 4: s = θ² (or ½θ²)
      saliency: ({ theta }) => (scale === 1 ? tf.square(theta) : tf.mul(tf.square(theta), scale)),
      config: { saliency },
    },
    options,
  );
}

/**
 * Optimal Brain Damage: s_k = ½ G_kk θ_k² (Eq. 3), which assumes a converged network (zero gradient).
 *
 * @example
 * ```ts
 * const criterion = optimalBrainDamage({ gaussNewton: 'exact' });
 * ```
 */
export function optimalBrainDamage(options: CurvatureCriterionOptions = {}): SaliencyCriterion {
  return defineCriterion(
    {
      id: 'obd',
      needs: { gaussNewton: true },
      // Eq. 3: s = ½ G_kk θ²
      saliency: (input) => tf.mul(tf.mul(measured(input, 'obd', 'gaussNewton'), tf.square(input.theta)), 0.5),
      gaussNewton: options.gaussNewton ?? 'exact',
      seed: options.seed ?? 0,
    },
    options,
  );
}

/**
 * The linear model (LM): the predicted loss change of removing θ_k is −g_k θ_k, ranked by its size,
 * s_k = |g_k θ_k| (Eq. 6). Needs the gradient only.
 *
 * @example
 * ```ts
 * const criterion = linearModel({ lambda: 1e-3 });
 * ```
 */
export function linearModel(options: CriterionOptions = {}): SaliencyCriterion {
  return defineCriterion(
    {
      id: 'lm',
      needs: { gradient: true },
      // Eq. 6: ΔL_LM(−θ_k) = −g_k θ_k; s = |g_k θ_k|
      saliency: (input) => tf.abs(tf.mul(measured(input, 'lm', 'gradient'), input.theta)),
    },
    options,
  );
}

/**
 * The diagonal quadratic model (QM): the predicted loss change of removing θ_k is
 * −g_k θ_k + ½ G_kk θ_k², ranked by its size (Eq. 5). Generalises OBD to networks that are not at
 * convergence.
 *
 * @example
 * ```ts
 * const criterion = quadraticModel({ lambda: 0, gaussNewton: 'sampled' });
 * ```
 */
export function quadraticModel(options: CurvatureCriterionOptions = {}): SaliencyCriterion {
  return defineCriterion(
    {
      id: 'qm',
      needs: { gradient: true, gaussNewton: true },
      // Eq. 5: ΔL_QM(−θ_k) = −g_k θ_k + ½ G_kk θ_k²; s = |ΔL_QM|
      saliency: (input) => {
        const theta = input.theta;
        const linear = tf.neg(tf.mul(measured(input, 'qm', 'gradient'), theta));
        const quadratic = tf.mul(tf.mul(measured(input, 'qm', 'gaussNewton'), tf.square(theta)), 0.5);
        return tf.abs(tf.add(linear, quadratic));
      },
      gaussNewton: options.gaussNewton ?? 'exact',
      seed: options.seed ?? 0,
    },
    options,
  );
}

/**
 * Options of {@link randomCriterion}.
 *
 * @example
 * ```ts
 * const options: RandomCriterionOptions = { seed: 7 };
 * ```
 */
export interface RandomCriterionOptions extends CriterionOptions {
  /** Seed of the scores; default 0. */
  seed?: number;
}

/**
 * Random saliencies, uniform in [0, 1), seeded (the paper's global random pruning baseline).
 *
 * @example
 * ```ts
 * const criterion = randomCriterion({ seed: 3 });
 * ```
 */
export function randomCriterion(options: RandomCriterionOptions = {}): SaliencyCriterion {
  return defineCriterion(
    {
      id: 'random',
      needs: {},
      saliency: ({ parameter, random }) => {
        const values = new Float32Array(parameter.size);
        for (let index = 0; index < values.length; index += 1) values[index] = random.next();
        return tf.tensor(values, [...parameter.shape]);
      },
      seed: options.seed ?? 0,
      config: { seed: options.seed ?? 0 },
    },
    options,
  );
}

/**
 * GraSP (Wang et al., 2020; Appendix C.4): the change of the gradient flow gᵀg when θ_k is removed
 * is −θ_k (Hg)_k. GraSP removes the weights with the largest −θ⊙Hg, so the saliency kept here is
 * s_k = θ_k (Hg)_k (signed). H·g is a central difference of gradients (see {@link measure}).
 *
 * @example
 * ```ts
 * const criterion = grasp();
 * ```
 */
export function grasp(options: CriterionOptions = {}): SaliencyCriterion {
  return defineCriterion(
    {
      id: 'grasp',
      needs: { hessianGradient: true },
      // GraSP: S(−θ) = −θ ⊙ Hg is pruned from the top, so keep by s = θ ⊙ Hg
      saliency: (input) => tf.mul(input.theta, measured(input, 'grasp', 'hessianGradient')),
    },
    options,
  );
}

/**
 * SynFlow (Tanaka et al., 2020; Appendix C.4): data-free, s_k = |θ_k ∂R/∂θ_k| with
 * R = 1ᵀ f_{|θ|}(1), every trainable variable replaced by its absolute value and an input of ones
 * (only its shape is taken from the scoring batch). With tanh the network is not linearised as it
 * is with ReLU; the scores are still the synaptic flow of the positive network.
 *
 * @example
 * ```ts
 * const criterion = synflow();
 * ```
 */
export function synflow(options: CriterionOptions = {}): SaliencyCriterion {
  return defineCriterion(
    {
      id: 'synflow',
      needs: { synflow: true },
      // SynFlow: s = |θ ⊙ ∂R/∂θ|
      saliency: (input) => tf.abs(tf.mul(input.theta, measured(input, 'synflow', 'synflow'))),
    },
    options,
  );
}

/**
 * The built-in criteria by id.
 *
 * @example
 * ```ts
 * const qm = CRITERIA.qm({ lambda: 0 });
 * ```
 */
export const CRITERIA = {
  mp: magnitudeCriterion,
  obd: optimalBrainDamage,
  lm: linearModel,
  qm: quadraticModel,
  random: randomCriterion,
  grasp,
  synflow,
} as const;

/**
 * Id of a built-in criterion.
 *
 * @example
 * ```ts
 * const id: CriterionId = 'lm';
 * ```
 */
export type CriterionId = keyof typeof CRITERIA;

/**
 * Rebuilds a built-in criterion from its id and `toConfig()` output.
 *
 * @throws FinepruneError `INVALID_ARGUMENT` for an unknown id
 *
 * @example
 * ```ts
 * const copy = criterionFromConfig(qm.id, qm.toConfig());
 * ```
 */
export function criterionFromConfig(id: string, config: JsonObject = {}): SaliencyCriterion {
  const factory = (CRITERIA as Record<string, (options: CurvatureCriterionOptions) => SaliencyCriterion>)[id];
  if (!factory) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `Unknown criterion "${id}".`,
      fix: `Use one of: ${Object.keys(CRITERIA).join(', ')}, or build your own with defineCriterion().`,
    });
  }
  return factory(config as CurvatureCriterionOptions);
}
