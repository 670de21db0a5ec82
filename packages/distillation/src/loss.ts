import * as tf from '@tensorflow/tfjs-core';
import { addMany } from '@fineprune/tensor';
import type { ModelOutput } from '@fineprune/core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';

/** Throws an `INVALID_ARGUMENT` (or another code) FinepruneError. */
export function fail(
  message: string,
  fix: string,
  code: FinepruneError['code'] = ErrorCodes.INVALID_ARGUMENT,
): never {
  throw new FinepruneError({ code, message, fix });
}

/**
 * Checks a temperature: a finite number > 0.
 *
 * @example
 * ```ts
 * checkTemperature(2); // passes
 * checkTemperature(0); // throws INVALID_ARGUMENT
 * ```
 */
export function checkTemperature(temperature: number, owner = 'distillation'): void {
  if (!(typeof temperature === 'number' && Number.isFinite(temperature) && temperature > 0))
    fail(
      `${owner}: temperature must be a finite number > 0, got ${String(temperature)}.`,
      'Use a softening temperature such as 2 (the reference implementation’s value); 1 compares the plain softmax outputs.',
    );
}

/** The outputs as a list, checked to be tensors. */
function asList(outputs: ModelOutput, what: string): tf.Tensor[] {
  const list = Array.isArray(outputs) ? outputs : [outputs];
  if (list.length === 0 || !list.every((output) => output instanceof tf.Tensor))
    fail(
      `distillation: the ${what} outputs must be a tensor or a non-empty array of tensors.`,
      `Pass the ${what} logits as tf.Tensor (or one tensor per output head).`,
    );
  return list;
}

function shapeText(list: readonly tf.Tensor[]): string {
  return list.length === 1
    ? `[${list[0]!.shape.join(', ')}]`
    : list.map((t) => `[${t.shape.join(', ')}]`).join(' and ');
}

/**
 * Checks that student and teacher outputs agree: the same number of outputs, equal shapes, float
 * logits with a class axis (rank ≥ 2) and at least one row. Throws `SHAPE_MISMATCH` or
 * `INVALID_ARGUMENT` naming both shapes.
 *
 * @example
 * ```ts
 * checkOutputPairs(tf.zeros([4, 3]), tf.zeros([4, 3])); // passes
 * checkOutputPairs(tf.zeros([4, 3]), tf.zeros([4, 2])); // throws SHAPE_MISMATCH
 * ```
 */
export function checkOutputPairs(student: ModelOutput, teacher: ModelOutput): [tf.Tensor[], tf.Tensor[]] {
  const students = asList(student, 'student');
  const teachers = asList(teacher, 'teacher');
  if (students.length !== teachers.length)
    throw new FinepruneError({
      code: ErrorCodes.SHAPE_MISMATCH,
      message: `distillation: the student has ${students.length} output(s) (${shapeText(students)}) but the teacher has ${teachers.length} (${shapeText(teachers)}).`,
      fix: 'Use a teacher with the same output heads as the student (for span models: start and end logits), in the same order.',
      details: { student: students.map((t) => t.shape), teacher: teachers.map((t) => t.shape) },
    });
  students.forEach((output, index) => {
    const other = teachers[index]!;
    const which = students.length > 1 ? ` output ${index}` : '';
    if (
      output.shape.length !== other.shape.length ||
      output.shape.some((size, axis) => size !== other.shape[axis])
    )
      throw new FinepruneError({
        code: ErrorCodes.SHAPE_MISMATCH,
        message: `distillation:${which} student logits have shape [${output.shape.join(', ')}] but teacher logits have shape [${other.shape.join(', ')}].`,
        fix: 'Distil from a teacher with the same classes (the last axis) and feed both the same batch.',
        details: { output: index, student: output.shape, teacher: other.shape },
      });
    if (output.rank < 2)
      throw new FinepruneError({
        code: ErrorCodes.SHAPE_MISMATCH,
        message: `distillation:${which} logits of shape [${output.shape.join(', ')}] have no batch axis; expected [batch, …, classes].`,
        fix: 'Give logits with a leading batch axis and the classes on the last axis (for one example: shape [1, classes]).',
        details: { output: index, shape: output.shape },
      });
    if (output.size === 0)
      fail(
        `distillation:${which} logits of shape [${output.shape.join(', ')}] are empty.`,
        'Distil on a batch with at least one example and one class.',
        ErrorCodes.SHAPE_MISMATCH,
      );
    for (const [tensor, who] of [
      [output, 'student'],
      [other, 'teacher'],
    ] as const) {
      if (tensor.dtype !== 'float32')
        fail(
          `distillation:${which} ${who} outputs have dtype ${tensor.dtype}; logits must be float32.`,
          `Return the ${who}'s raw float logits (before softmax), not class ids.`,
        );
    }
  });
  return [students, teachers];
}

/** Identity forward, zero gradient: the argument is treated as a constant. */
const stopGradient = tf.customGrad((x) => ({
  value: tf.clone(x as tf.Tensor),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
})) as (x: tf.Tensor) => tf.Tensor;

/**
 * T² · KL(p_t ‖ p_s) averaged over the rows of one pair of logits; the teacher logits are
 * constants. Inside `tf.tidy` of the caller.
 */
function pairLoss(student: tf.Tensor, teacher: tf.Tensor, temperature: number): tf.Scalar {
  const classes = student.shape[student.rank - 1]!;
  const rows = student.size / classes;
  // log p = log_softmax(z / T), the stable form of log softmax (Hinton et al. 2015, Sec. 2)
  const logStudent = tf.logSoftmax(tf.div(student, temperature));
  const logTeacher = tf.logSoftmax(tf.div(stopGradient(teacher), temperature));
  // KL(p_t ‖ p_s) = Σ_k p_t,k (log p_t,k − log p_s,k), summed over rows and divided by their number
  // (PyTorch KLDivLoss reduction 'batchmean', as in masked_run_glue.py), times T² (Hinton et al. 2015)
  const divergence = tf.sum(tf.mul(tf.exp(logTeacher), tf.sub(logTeacher, logStudent)));
  return tf.mul(divergence, (temperature * temperature) / rows) as tf.Scalar;
}

/**
 * The bare distillation term T² · KL(p_t ‖ p_s) with p = softmax(logits / T) along the last axis
 * (Hinton et al. 2015; the loss of the *Movement Pruning* reference code, without α_distil),
 * for users who write their own training loops.
 *
 * - Both arguments are **logits** (before softmax). A teacher that outputs probabilities p can be
 *   passed as `tf.log(p)`: softmax(log p / T) is the same softened distribution.
 * - The KL is summed over the classes and averaged over every row: all leading positions of the
 *   logits, so `[batch, classes]` averages over the batch and `[batch, length, classes]` over
 *   batch × length positions. (PyTorch's `batchmean` divides by the batch size only; it agrees
 *   for rank-2 logits, the case of the reference implementation.)
 * - Several outputs (an array, such as the start and end logits of a span head) give the mean of
 *   their terms, as the reference code averages the start and end KL for SQuAD.
 * - No gradient flows to the teacher logits: they are treated as constants.
 *
 * @param studentLogits - the student's logits, one tensor or one per output
 * @param teacherLogits - the teacher's logits, the same shapes
 * @param temperature - the softening temperature T > 0 (default 2)
 * @returns a scalar the caller disposes
 * @throws FinepruneError `SHAPE_MISMATCH` when shapes or output counts differ, `INVALID_ARGUMENT` for a bad temperature
 *
 * @example
 * ```ts
 * const { value, grads } = tf.variableGrads(() => {
 *   const logits = student.predict(x) as tf.Tensor;
 *   const task = tf.losses.softmaxCrossEntropy(labels, logits);
 *   return tf.add(tf.mul(task, 0.5), tf.mul(distillationLoss(logits, teacherLogits, 2), 0.5)) as tf.Scalar;
 * });
 * ```
 */
export function distillationLoss(
  studentLogits: ModelOutput,
  teacherLogits: ModelOutput,
  temperature = 2,
): tf.Scalar {
  checkTemperature(temperature);
  const [students, teachers] = checkOutputPairs(studentLogits, teacherLogits);
  return tf.tidy(() => {
    const terms = students.map((student, index) => pairLoss(student, teachers[index]!, temperature));
    // Several heads: the mean of their terms ((start + end) / 2 in masked_run_squad.py)
    return (terms.length === 1 ? terms[0]! : tf.div(addMany(terms), terms.length)) as tf.Scalar;
  });
}
