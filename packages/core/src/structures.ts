import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes } from '@fineprune/tensor/errors';
import type { MaskFunction, PrunableModel, PrunableParameter, ScoreStrategy } from './types';
import { fail } from './fail';

/**
 * What the units of a structure are: `neuron` (a Dense layer's output unit), `filter` (a
 * convolution's output channel), `channel` (a channel shared by several layers, as in a residual
 * block), `head` (an attention head); models may name their own kinds.
 *
 * @example
 * ```ts
 * const kind: StructureKind = 'filter';
 * ```
 */
export type StructureKind = 'neuron' | 'filter' | 'channel' | 'head' | (string & {});

/**
 * Where the units of a {@link Structure} lie in one prunable parameter. Along `axis`, the parameter
 * holds `repeats` blocks of `count × width` entries; unit `u` owns, in every block `r`, the
 * `width` entries from `(r · count + u) · width`. So the axis has `repeats · count · width` entries.
 *
 * - A Dense layer's neurons in its own kernel `[in, out]`: `axis: 1`, role `output`.
 * - The same neurons in the next Dense kernel: `axis: 0`, role `input`.
 * - A convolution's filters read by a Dense layer after `Flatten` of `[h, w, c]`: `axis: 0`,
 *   `repeats: h · w` (the flattened index is `p · c + u`).
 * - Attention heads in a query kernel `[hidden, heads · headSize]`: `axis: 1`, `width: headSize`.
 *
 * @example
 * ```ts
 * const member: StructureMember = { parameter: 'fc2/kernel', axis: 0, role: 'input' };
 * ```
 */
export interface StructureMember {
  /** Name of a prunable parameter of the model. */
  readonly parameter: string;
  readonly axis: number;
  /**
   * `output`: the parameter computes the units (a Dense kernel's columns, a convolution's filters,
   * a depthwise convolution's channels); `input`: it reads them (the next layer's rows or input
   * channels). A unit no `input` member reads (all its input slices zero) can be removed by `shrink`.
   */
  readonly role: 'output' | 'input';
  /** Entries per unit in each block along the axis; default 1. */
  readonly width?: number;
  /** Blocks along the axis; default 1. */
  readonly repeats?: number;
}

/**
 * A set of units that are pruned together across parameters: the model knows them (a neuron is a
 * column of one kernel and a row of the next; a filter also owns the next convolution's input
 * channel and the batch-norm entries between them), so {@link PrunableModel.structures} lists them.
 * Unit masks and unit scores (`@fineprune/structured`) work on structures; `shrink` of the adapters
 * removes the units that nothing reads any more.
 *
 * @example
 * ```ts
 * const neurons: Structure = {
 *   name: 'fc1/neurons', kind: 'neuron', count: 300,
 *   members: [
 *     { parameter: 'fc1/kernel', axis: 1, role: 'output' },
 *     { parameter: 'fc2/kernel', axis: 0, role: 'input' },
 *   ],
 * };
 * ```
 */
export interface Structure {
  /** Unique among the model's structures and different from every parameter name (`fc1/neurons`). */
  readonly name: string;
  readonly kind: StructureKind;
  /** Number of units. */
  readonly count: number;
  readonly members: readonly StructureMember[];
}

/**
 * The layout of a member along its axis, with the defaults filled in.
 *
 * @example
 * ```ts
 * memberLayout({ parameter: 'fc2/kernel', axis: 0, role: 'input' }); // { repeats: 1, width: 1 }
 * ```
 */
export function memberLayout(member: StructureMember): { repeats: number; width: number } {
  return { repeats: member.repeats ?? 1, width: member.width ?? 1 };
}

/**
 * Checks a model's structures against its parameters: unique names that are not parameter names, a
 * positive unit count, members that name parameters of the model, axes in range, and axis sizes of
 * exactly `repeats · count · width`. Throws `INVALID_ARGUMENT` or `SHAPE_MISMATCH` naming the
 * structure and member.
 *
 * @example
 * ```ts
 * checkStructures(model.structures?.() ?? [], model.parameters());
 * ```
 */
export function checkStructures(
  structures: readonly Structure[],
  parameters: readonly PrunableParameter[],
): void {
  const byName = new Map(parameters.map((parameter) => [parameter.name, parameter]));
  const names = new Set<string>();
  for (const structure of structures) {
    const where = `Structure ${JSON.stringify(structure?.name)}`;
    const fix = 'Fix the model’s structures(): see the StructureMember documentation of @fineprune/core.';
    if (typeof structure?.name !== 'string' || structure.name.length === 0)
      fail('A structure has no name.', fix);
    if (names.has(structure.name) || byName.has(structure.name))
      fail(`${where} is named twice, or like a parameter.`, 'Give every structure a name of its own.');
    names.add(structure.name);
    if (!(Number.isInteger(structure.count) && structure.count >= 1))
      fail(`${where} has ${structure.count} units; it needs a whole number ≥ 1.`, fix);
    if (!Array.isArray(structure.members) || structure.members.length === 0)
      fail(`${where} has no members.`, fix);
    for (const member of structure.members) {
      const parameter = byName.get(member.parameter);
      if (!parameter)
        fail(
          `${where} names parameter ${JSON.stringify(member.parameter)}, which the model does not have.`,
          fix,
        );
      const { repeats, width } = memberLayout(member);
      if (!(Number.isInteger(member.axis) && member.axis >= 0 && member.axis < parameter.shape.length))
        fail(
          `${where}: axis ${member.axis} is out of range for "${parameter.name}" [${parameter.shape}].`,
          fix,
        );
      if (!(Number.isInteger(repeats) && repeats >= 1 && Number.isInteger(width) && width >= 1))
        fail(`${where}: repeats and width of "${parameter.name}" must be whole numbers ≥ 1.`, fix);
      if (member.role !== 'output' && member.role !== 'input')
        fail(`${where}: the role of "${parameter.name}" must be "output" or "input".`, fix);
      const size = parameter.shape[member.axis]!;
      if (size !== repeats * structure.count * width)
        fail(
          `${where}: axis ${member.axis} of "${parameter.name}" [${parameter.shape}] has ${size} entries, not repeats · count · width = ${repeats} · ${structure.count} · ${width}.`,
          fix,
          ErrorCodes.SHAPE_MISMATCH,
        );
    }
  }
}

/**
 * The structures of `model` that touch `parameters`, each with only its members among them;
 * structures with no such member are left out. Checks every structure first ({@link checkStructures}).
 *
 * @example
 * ```ts
 * const structures = structuresOf(model, group.parameters);
 * ```
 */
export function structuresOf(model: PrunableModel, parameters: readonly PrunableParameter[]): Structure[] {
  const all = model.structures?.() ?? [];
  checkStructures(all, model.parameters());
  const chosen = new Set(parameters.map((parameter) => parameter.name));
  return all.flatMap((structure) => {
    const members = structure.members.filter((member) => chosen.has(member.parameter));
    return members.length === 0 ? [] : [{ ...structure, members }];
  });
}

/** The shape with `axis` split into [repeats, count, width], and the index of the count axis. */
function splitShape(shape: readonly number[], member: StructureMember, count: number): [number[], number] {
  const { repeats, width } = memberLayout(member);
  const split = [...shape.slice(0, member.axis), repeats, count, width, ...shape.slice(member.axis + 1)];
  return [split, member.axis + 1];
}

/**
 * Spreads one value per unit over a parameter's shape: each entry gets the value of the unit that
 * owns it along the member's axis. Differentiable: the gradient of a unit's value is the sum of the
 * gradients of its entries (so a straight-through score of one unit receives Eq. 2 of Movement
 * Pruning summed over the unit).
 *
 * @param values - one value per unit, shape `[count]`
 * @param member - where the units lie in the parameter
 * @param shape - the parameter's shape
 *
 * @example
 * ```ts
 * expandUnits(tf.tensor1d([1, 0]), { parameter: 'w', axis: 1, role: 'output' }, [3, 2]); // [[1, 0], [1, 0], [1, 0]]
 * ```
 */
export function expandUnits(values: tf.Tensor, member: StructureMember, shape: readonly number[]): tf.Tensor {
  return tf.tidy(() => {
    const count = values.size;
    const [split, countAxis] = splitShape(shape, member, count);
    const placed = split.map((size, index) => (index === countAxis ? size : 1));
    // A product with ones, not broadcastTo: broadcastTo's gradient (Tile) stops at rank 4, and a
    // convolution kernel's member splits into rank 6.
    const spread = tf.mul(tf.reshape(values, placed), tf.ones(split));
    return tf.reshape(spread, [...shape]);
  });
}

/**
 * How {@link poolUnits} reduces the entries of a unit: their `sum`, the sum of their squares
 * (`sumOfSquares`; its square root over all members is the L2 norm), or their `max`.
 *
 * @example
 * ```ts
 * const reduction: UnitReduction = 'sumOfSquares';
 * ```
 */
export type UnitReduction = 'sum' | 'sumOfSquares' | 'max';

/**
 * Reduces a parameter-shaped tensor to one value per unit of a member: the `sum`, sum of squares or
 * `max` of the entries each unit owns in this parameter. Pool the members of a structure and
 * combine them (add sums, take the max of maxima) for the structure's value.
 *
 * @example
 * ```ts
 * poolUnits(tf.abs(weight), { parameter: 'fc1/kernel', axis: 1, role: 'output' }, 300, 'sum'); // L1 norm of each column
 * ```
 */
export function poolUnits(
  values: tf.Tensor,
  member: StructureMember,
  count: number,
  reduction: UnitReduction,
): tf.Tensor1D {
  return tf.tidy(() => {
    const [split, countAxis] = splitShape(values.shape, member, count);
    const reshaped = tf.reshape(values, split);
    const axes = split.map((_, index) => index).filter((index) => index !== countAxis);
    if (reduction === 'max') return tf.max(reshaped, axes) as tf.Tensor1D;
    return tf.sum(reduction === 'sum' ? reshaped : tf.square(reshaped), axes) as tf.Tensor1D;
  });
}

/**
 * The mask of each parameter from unit masks: the product, over every structure with a member in
 * the parameter, of the structure's unit mask spread over the parameter (so a weight is kept when
 * every unit it belongs to is kept). Parameters no structure touches get a mask of ones.
 *
 * @param structures - the structures, restricted to members among `parameters`
 * @param unitMasks - one `[count]` 0/1 tensor per structure, in order
 * @param parameters - the parameters to build masks for
 * @returns one float32 mask per parameter, in order (the caller disposes them)
 *
 * @example
 * ```ts
 * const masks = parameterMasksFromUnits(structures, unitMasks, parameters);
 * ```
 */
export function parameterMasksFromUnits(
  structures: readonly Structure[],
  unitMasks: readonly tf.Tensor[],
  parameters: readonly PrunableParameter[],
): tf.Tensor[] {
  return parameters.map((parameter) =>
    tf.tidy(() => {
      let mask: tf.Tensor = tf.ones([...parameter.shape]);
      structures.forEach((structure, index) => {
        for (const member of structure.members) {
          if (member.parameter !== parameter.name) continue;
          mask = tf.mul(mask, expandUnits(tf.cast(unitMasks[index]!, 'float32'), member, parameter.shape));
        }
      });
      return mask;
    }),
  );
}

/**
 * The learned unit scores spread over one parameter: the sum, over every structure with a member in
 * it, of that structure's scores spread with {@link expandUnits}; `undefined` when no structure with
 * scores touches the parameter. Inside the gradient tape this routes the straight-through gradient
 * dL/d(W⊙M) ⊙ W of every entry to the scores of the units it belongs to (Eq. 2 of Movement
 * Pruning, summed over each unit).
 *
 * @example
 * ```ts
 * const spread = unitScoresOf(parameter, structures, scoreVariables);
 * const weight = maskedWeight(parameter.weight, parameter.mask, spread);
 * ```
 */
export function unitScoresOf(
  parameter: PrunableParameter,
  structures: readonly Structure[],
  scores: ReadonlyArray<tf.Tensor | undefined>,
): tf.Tensor | undefined {
  const parts: tf.Tensor[] = [];
  structures.forEach((structure, index) => {
    const values = scores[index];
    if (!values) return;
    for (const member of structure.members) {
      if (member.parameter === parameter.name) parts.push(expandUnits(values, member, parameter.shape));
    }
  });
  if (parts.length === 0) return undefined;
  return parts.length === 1 ? parts[0]! : tf.addN(parts);
}

/**
 * How many units of a structure are kept: a unit counts as removed when every `input` member's
 * slice of it is zero in the member's mask (nothing reads it). Without `input` members, when every
 * member's slice is zero.
 *
 * @returns one boolean per unit (true: kept)
 *
 * @example
 * ```ts
 * const kept = await keptUnits(structure, model.parameters());
 * console.log(`${kept.filter(Boolean).length}/${structure.count} ${structure.kind}s`);
 * ```
 */
export async function keptUnits(
  structure: Structure,
  parameters: readonly PrunableParameter[],
): Promise<boolean[]> {
  const byName = new Map(parameters.map((parameter) => [parameter.name, parameter]));
  const readers = structure.members.filter((member) => member.role === 'input');
  const deciding = readers.length > 0 ? readers : structure.members;
  const kept = new Array<boolean>(structure.count).fill(false);
  for (const member of deciding) {
    const parameter = byName.get(member.parameter);
    if (!parameter) continue;
    const pooled = tf.tidy(() => poolUnits(tf.abs(parameter.mask), member, structure.count, 'max'));
    const values = await pooled.data();
    pooled.dispose();
    values.forEach((value, unit) => {
      if (value !== 0) kept[unit] = true;
    });
  }
  return kept;
}

/**
 * The structures a pruning group works on, checked when the group is composed: none when neither
 * its score strategy scores units ({@link ScoreStrategy.computeUnits}) nor its mask function
 * `requiresStructures`; otherwise the model's structures that touch the group's parameters. Throws
 * `INCOMPATIBLE_PLUGINS` when unit scores meet a mask without `computeUnits`, when the model has no
 * `structures()`, or when no structure touches the group.
 *
 * @param where - how to name the group in messages (`pruning group "default"`)
 *
 * @example
 * ```ts
 * const structures = structuresForGroup('pruning group "default"', model, parameters, scores, mask);
 * ```
 */
export function structuresForGroup(
  where: string,
  model: PrunableModel,
  parameters: readonly PrunableParameter[],
  scores: ScoreStrategy,
  mask: MaskFunction,
): Structure[] {
  const unitScores = typeof scores.computeUnits === 'function';
  if (!unitScores && !mask.requiresStructures) return [];
  if (unitScores && typeof mask.computeUnits !== 'function')
    fail(
      `In ${where}, score strategy "${scores.id}" scores units (neurons, filters, heads) but mask "${mask.id}" selects single weights.`,
      'Use a unit mask such as unitTopV() from @fineprune/structured with unit scores, or a weight score such as magnitude() with this mask.',
      ErrorCodes.INCOMPATIBLE_PLUGINS,
    );
  if (typeof model.structures !== 'function')
    fail(
      `In ${where}, "${unitScores ? scores.id : mask.id}" prunes whole units, but model "${model.name}" lists no structures.`,
      'Wrap the model with an adapter that implements structures() (fromLayersModel of @fineprune/layers, the encoder of @fineprune/transformers), or use a shape-only mask such as block() or nOfM() of @fineprune/masks.',
      ErrorCodes.INCOMPATIBLE_PLUGINS,
    );
  const structures = structuresOf(model, parameters);
  if (structures.length === 0)
    fail(
      `In ${where}, no structure of model "${model.name}" touches the chosen parameters (${parameters.map((parameter) => parameter.name).join(', ')}).`,
      `Choose parameters that belong to units; the model's structures are: ${(model.structures() ?? []).map((structure) => structure.name).join(', ') || 'none'}.`,
      ErrorCodes.INCOMPATIBLE_PLUGINS,
    );
  return structures;
}
