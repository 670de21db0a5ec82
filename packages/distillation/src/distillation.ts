import * as tf from '@tensorflow/tfjs-core';
import type {
  JsonObject,
  LossContext,
  LossTerm,
  ModelInput,
  ModelOutput,
  PrunableModel,
} from '@fineprune/core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { checkOutputPairs, checkTemperature, distillationLoss, fail } from './loss';

/**
 * A teacher as a function from the batch's inputs to its logits.
 *
 * @example
 * ```ts
 * const teacher: TeacherFunction = (x) => denseModel.predict(x as tf.Tensor) as tf.Tensor;
 * ```
 */
export type TeacherFunction = (x: ModelInput) => ModelOutput;

/**
 * The model distilled from: a {@link PrunableModel} (its `forward(x, { training: false })` is used)
 * or a {@link TeacherFunction}. Either must return **logits** (before softmax), with the same
 * shapes as the student's outputs. The teacher is only read, never trained, and stays the
 * caller's to dispose.
 *
 * @example
 * ```ts
 * const teacher: Teacher = fromLayersModel(fineTunedDense, { loss: 'sparseCategoricalCrossentropy' });
 * ```
 */
export type Teacher = PrunableModel | TeacherFunction;

/**
 * Options of {@link distillation}.
 *
 * @example
 * ```ts
 * const options: DistillationOptions = { teacher, temperature: 2, alphaDistil: 0.5, alphaCe: 0.5 };
 * ```
 */
export interface DistillationOptions {
  /** The teacher; it must output logits of the student's shapes. */
  teacher: Teacher;
  /** Softening temperature T > 0; default 2 (the reference implementation). */
  temperature?: number;
  /** α_distil ≥ 0, the weight of the distillation term; default 0.5. */
  alphaDistil?: number;
  /** α_ce ≥ 0, the weight of the task loss (the term's `taskLossWeight`); default 0.5. */
  alphaCe?: number;
}

/**
 * What `toConfig()` of a distillation term returns (the teacher is not data).
 *
 * @example
 * ```ts
 * const config: DistillationConfig = { type: 'distillation', temperature: 2, alphaDistil: 0.5, alphaCe: 0.5 };
 * ```
 */
export type DistillationConfig = JsonObject & {
  type: 'distillation';
  temperature: number;
  alphaDistil: number;
  alphaCe: number;
};

/**
 * The loss term that {@link distillation} returns.
 *
 * @example
 * ```ts
 * const term: DistillationTerm = distillation({ teacher });
 * term.taskLossWeight; // 0.5 = α_ce
 * ```
 */
export interface DistillationTerm extends LossTerm {
  readonly id: 'distillation';
  readonly teacher: Teacher;
  readonly temperature: number;
  readonly alphaDistil: number;
  readonly alphaCe: number;
  /** α_ce: the Pruner multiplies the task loss by it. */
  readonly taskLossWeight: number;
  /**
   * The teacher's outputs on `x` as a list of constants (no gradient reaches the teacher, and its
   * forward pass is not recorded on a surrounding gradient tape). The caller disposes them.
   */
  teacherOutputs(x: ModelInput): tf.Tensor[];
  toConfig(): DistillationConfig;
}

function isPrunableModel(teacher: unknown): teacher is PrunableModel {
  return (
    teacher !== null &&
    typeof teacher === 'object' &&
    typeof (teacher as PrunableModel).forward === 'function'
  );
}

function checkAlpha(name: string, value: number): void {
  if (!(typeof value === 'number' && Number.isFinite(value) && value >= 0))
    fail(
      `distillation: ${name} must be a finite number ≥ 0, got ${String(value)}.`,
      `Use a weight such as 0.5 (the reference implementation uses alphaDistil = alphaCe = 0.5).`,
    );
}

function teacherFailed(error: unknown): FinepruneError {
  if (FinepruneError.is(error))
    return new FinepruneError({
      code: error.code,
      message: `distillation: the teacher failed on the batch: ${error.message}`,
      fix: error.fix,
      cause: error,
      ...(error.details ? { details: error.details } : {}),
    });
  return new FinepruneError({
    code: ErrorCodes.INVALID_ARGUMENT,
    message: `distillation: the teacher threw on the batch: ${(error as Error)?.message ?? String(error)}`,
    fix: 'Check that the teacher takes the same inputs as the student (the batch’s x) and returns logits; see the cause.',
    cause: error,
  });
}

/**
 * Runs the teacher as constants. The forward pass runs inside a custom-gradient op, where TF.js
 * records nothing on the gradient tape (so a surrounding `tf.variableGrads` keeps no teacher
 * activations), and the op's gradient is zero. Several outputs travel through the op
 * concatenated and are split again outside it.
 */
function runTeacher(teacher: Teacher, x: ModelInput): tf.Tensor[] {
  const shapes: number[][] = [];
  let failure: unknown;
  const constant = tf.customGrad((anchor) => {
    let raw: ModelOutput;
    try {
      raw = isPrunableModel(teacher) ? teacher.forward(x, { training: false }) : teacher(x);
    } catch (error) {
      failure = teacherFailed(error);
      throw failure;
    }
    const list = Array.isArray(raw) ? raw : [raw];
    if (list.length === 0 || !list.every((output) => output instanceof tf.Tensor)) {
      failure = new FinepruneError({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: 'distillation: the teacher returned no tensor (or an array with non-tensors).',
        fix: 'Return the teacher’s logits as a tf.Tensor, or an array of them for several output heads.',
      });
      throw failure;
    }
    const notFloat = list.find((output) => output.dtype !== 'float32');
    if (notFloat) {
      failure = new FinepruneError({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: `distillation: the teacher returned a ${notFloat.dtype} tensor of shape [${notFloat.shape.join(', ')}]; logits must be float32.`,
        fix: 'Return the teacher’s raw float logits (before softmax), not class ids.',
      });
      throw failure;
    }
    for (const output of list) shapes.push([...output.shape]);
    // A fresh tensor even for one output, so the caller's tidy never frees a tensor the teacher keeps.
    const value =
      list.length === 1 ? tf.clone(list[0]!) : tf.concat(list.map((output) => tf.reshape(output, [-1])));
    return { value, gradFunc: () => tf.zerosLike(anchor as tf.Tensor) };
  }) as (anchor: tf.Tensor) => tf.Tensor;
  try {
    return tf.tidy(() => {
      const flat = constant(tf.scalar(0));
      if (shapes.length === 1) return [flat];
      const sizes = shapes.map((shape) => shape.reduce((product, size) => product * size, 1));
      return tf.split(flat, sizes).map((part, index) => tf.reshape(part, shapes[index]!));
    });
  } catch (error) {
    if (failure !== undefined) throw failure;
    throw teacherFailed(error);
  }
}

/**
 * Knowledge distillation as a loss term (Hinton et al. 2015), as *Movement Pruning* uses it
 * (Sec. 6.2, "Distillation further boosts performance"): the dense fine-tuned model teaches the
 * pruned student, and the objective is
 *
 *   α_ce · task loss + α_distil · T² · KL(softmax(z_t / T) ‖ softmax(z_s / T)),
 *
 * with the reference implementation's defaults α_ce = α_distil = 0.5 and T = 2.
 *
 * - The term's value is α_distil · T² · KL averaged over rows (see {@link distillationLoss});
 *   its `taskLossWeight` is α_ce, which the `Pruner` applies to the task loss.
 * - The teacher runs on the batch's `x` at every step with `training: false`; its outputs are
 *   constants (no gradient, nothing recorded on the student's tape). It must output **logits**.
 * - A model with several outputs (span heads: start and end logits) gets the mean of the KL
 *   terms of its outputs; the teacher must have the same outputs in the same order.
 * - With alphaDistil = 0 the teacher is not run and the term is 0.
 *
 * Bad options throw `INVALID_ARGUMENT`; at a step, outputs of different shapes or counts throw
 * `SHAPE_MISMATCH` naming both shapes, and a teacher that throws is wrapped (with the cause).
 *
 * @example
 * ```ts
 * const pruner = new Pruner({
 *   model: student,
 *   scores: movement(), mask: topV(), schedule: cubic({ finalSparsity: 0.9, totalSteps: 6000 }),
 *   lossTerms: [distillation({ teacher: fromLayersModel(dense, { loss: 'sparseCategoricalCrossentropy' }) })],
 *   optimizers: { weights: adam({ learningRate: 1e-3 }), scores: adam({ learningRate: 1e-2 }) },
 * });
 * ```
 */
export function distillation(options: DistillationOptions): DistillationTerm {
  if (options === null || typeof options !== 'object')
    fail(
      'distillation: options are missing.',
      'Call distillation({ teacher }) with the dense teacher model.',
    );
  const { teacher } = options;
  if (!isPrunableModel(teacher) && typeof teacher !== 'function')
    fail(
      `distillation: teacher must be a PrunableModel or a function (x) => logits, got ${
        teacher === null ? 'null' : typeof teacher
      }.`,
      'Pass the dense fine-tuned model, for example fromLayersModel(teacherModel, { loss }), or a function returning its logits.',
    );
  const temperature = options.temperature ?? 2;
  const alphaDistil = options.alphaDistil ?? 0.5;
  const alphaCe = options.alphaCe ?? 0.5;
  checkTemperature(temperature);
  checkAlpha('alphaDistil', alphaDistil);
  checkAlpha('alphaCe', alphaCe);
  if (alphaDistil === 0 && alphaCe === 0)
    fail(
      'distillation: alphaDistil and alphaCe are both 0, so the training objective would be 0.',
      'Give at least one of them a positive weight (the reference uses 0.5 and 0.5).',
    );

  const teacherOutputs = (x: ModelInput) => runTeacher(teacher, x);
  return {
    id: 'distillation',
    teacher,
    temperature,
    alphaDistil,
    alphaCe,
    taskLossWeight: alphaCe,
    teacherOutputs,
    compute(context: LossContext): tf.Scalar {
      if (alphaDistil === 0) return tf.scalar(0);
      if (teacher === context.model)
        fail(
          'distillation: the teacher is the model being pruned, so it would only teach itself.',
          'Pass a separate dense copy of the model (loaded from the fine-tuned checkpoint) as the teacher.',
        );
      const outputs = teacherOutputs(context.batch.x);
      try {
        checkOutputPairs(context.outputs, outputs);
        return tf.tidy(
          () => tf.mul(distillationLoss(context.outputs, outputs, temperature), alphaDistil) as tf.Scalar,
        );
      } finally {
        tf.dispose(outputs);
      }
    },
    toConfig: () => ({ type: 'distillation', temperature, alphaDistil, alphaCe }),
  };
}

/**
 * Rebuilds a distillation term from its `toConfig()` output and a teacher (which is not data).
 *
 * @example
 * ```ts
 * const copy = distillationFromConfig(term.toConfig(), teacher);
 * ```
 */
export function distillationFromConfig(config: JsonObject, teacher: Teacher): DistillationTerm {
  const { type, temperature, alphaDistil, alphaCe, ...rest } = (config ?? {}) as JsonObject;
  if (type !== undefined && type !== 'distillation')
    fail(
      `distillationFromConfig: the config is of type ${JSON.stringify(type)}, not "distillation".`,
      'Pass the output of distillation(...).toConfig().',
    );
  const unknown = Object.keys(rest);
  if (unknown.length > 0)
    fail(
      `distillationFromConfig: unknown option(s) ${unknown.map((key) => JSON.stringify(key)).join(', ')}.`,
      'Use only temperature, alphaDistil and alphaCe.',
    );
  for (const [name, value] of Object.entries({ temperature, alphaDistil, alphaCe }))
    if (value !== undefined && typeof value !== 'number')
      fail(
        `distillationFromConfig: ${name} must be a number, got ${JSON.stringify(value)}.`,
        `Write ${name} as a number, for example 2 or 0.5.`,
      );
  return distillation({
    teacher,
    ...(temperature !== undefined ? { temperature: temperature as number } : {}),
    ...(alphaDistil !== undefined ? { alphaDistil: alphaDistil as number } : {}),
    ...(alphaCe !== undefined ? { alphaCe: alphaCe as number } : {}),
  });
}
