/**
 * `shrinkBertModel`: a physically smaller encoder without the heads and feed-forward neurons that
 * a pruned model no longer reads.
 */

import * as tf from '@tensorflow/tfjs-core';
import { keptUnits } from '@fineprune/core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { type EncoderConfig, layerHeads } from './config';
import { type BertModel, createBertModel } from './model';

/**
 * What {@link shrinkBertModel} kept of each layer.
 *
 * @example
 * ```ts
 * const { report } = await shrinkBertModel(model);
 * report.layers.map((layer) => `${layer.heads.kept}/${layer.heads.before} heads`);
 * ```
 */
export interface ShrinkBertReport {
  layers: Array<{
    heads: { before: number; kept: number };
    /** `kept` is at least 1: a layer whose neurons were all pruned keeps one whose output row is zero. */
    neurons: { before: number; kept: number };
  }>;
  /** Float32 entries of the encoder layers before and after. */
  encoderEntries: { before: number; after: number };
}

/** Which units of each layer survive, in the model's current numbering. */
interface LayerSelection {
  heads: number[];
  neurons: number[];
}

function indicesOf(kept: readonly boolean[]): number[] {
  return kept.flatMap((keep, index) => (keep ? [index] : []));
}

async function selectUnits(model: BertModel): Promise<LayerSelection[]> {
  const structures = new Map((model.structures?.() ?? []).map((structure) => [structure.name, structure]));
  const selections: LayerSelection[] = [];
  for (let layer = 0; layer < model.config.numLayers; layer += 1) {
    const heads = structures.get(`layer_${layer}/attention/heads`);
    const neurons = structures.get(`layer_${layer}/ffn/neurons`)!;
    const keptNeurons = indicesOf(await keptUnits(neurons, model.parameters()));
    selections.push({
      heads: heads ? indicesOf(await keptUnits(heads, model.parameters())) : [],
      // A layer needs one neuron; the first one's output row is zero in the mask, so it adds nothing.
      neurons: keptNeurons.length > 0 ? keptNeurons : [0],
    });
  }
  return selections;
}

/** The config of the shrunk encoder: removed heads in the unpruned model's numbering, kept widths. */
function shrunkConfig(config: EncoderConfig, selections: readonly LayerSelection[]): EncoderConfig {
  const prunedHeads = selections.map((selection, layer) => {
    const removed = new Set(config.prunedHeads?.[layer] ?? []);
    const current = Array.from({ length: config.numHeads }, (_, head) => head).filter(
      (head) => !removed.has(head),
    );
    const kept = new Set(selection.heads.map((head) => current[head]!));
    return Array.from({ length: config.numHeads }, (_, head) => head).filter((head) => !kept.has(head));
  });
  const intermediateSizes = selections.map((selection) => selection.neurons.length);
  const { prunedHeads: _heads, intermediateSizes: _sizes, ...sizes } = config;
  return {
    ...sizes,
    ...(prunedHeads.some((heads) => heads.length > 0) ? { prunedHeads } : {}),
    ...(intermediateSizes.some((size) => size !== config.intermediateSize) ? { intermediateSizes } : {}),
  };
}

/** The entries of a layer variable that the shrunk model keeps: an axis and indices, or all. */
function selectionOf(
  name: string,
  selections: readonly LayerSelection[],
  headSize: number,
): { axis: number; indices: number[] } | undefined {
  const match =
    /^layer_(\d+)\/(attention\/(?:query|key|value|output)|ffn\/(?:intermediate|output))\/(kernel|bias)$/.exec(
      name,
    );
  if (!match) return undefined;
  const selection = selections[Number(match[1])]!;
  const [part, kind] = [match[2]!, match[3]!];
  if (part === 'attention/output' || part === 'ffn/output') {
    if (kind === 'bias') return undefined; // the output bias has H entries, untouched
    const indices = part === 'ffn/output' ? selection.neurons : columnsOf(selection.heads, headSize);
    return { axis: 0, indices };
  }
  const indices = part === 'ffn/intermediate' ? selection.neurons : columnsOf(selection.heads, headSize);
  return { axis: kind === 'kernel' ? 1 : 0, indices };
}

/** The columns of the kept heads: head h owns columns [h·d, (h + 1)·d). */
function columnsOf(heads: readonly number[], headSize: number): number[] {
  return heads.flatMap((head) => Array.from({ length: headSize }, (_, offset) => head * headSize + offset));
}

function entriesOf(model: BertModel): number {
  return model
    .variables()
    .filter((entry) => entry.part === 'encoder')
    .reduce((total, entry) => total + entry.variable.size, 0);
}

/**
 * Removes the attention heads and feed-forward neurons that nothing reads any more (every entry of
 * the head's attention-output rows, or of the neuron's output row, masked to zero — see `keptUnits`
 * of `@fineprune/core`) and returns a new, physically smaller model with the same outputs: per-layer
 * head counts and feed-forward widths ({@link EncoderConfig.prunedHeads},
 * {@link EncoderConfig.intermediateSizes}), weights W ⊙ M of the kept units, and their masks, so
 * unstructured sparsity inside the kept units stays. A layer may lose every head (its attention then
 * adds only the output bias). Embeddings, LayerNorms, pooler and task head are copied; so is the
 * dropout state. The input model is left as it was; export the result with `exportHuggingFace` or
 * `saveHuggingFaceDirectory` and load it back with `loadHuggingFaceDirectory`.
 *
 * @param model - a (pruned) model
 * @returns the shrunk model (dispose it when done) and what was kept of each layer
 * @throws FinepruneError `DISPOSED` when the model was disposed
 *
 * @example
 * ```ts
 * const { model: small, report } = await shrinkBertModel(pruned);
 * console.log(report.layers.map((layer) => `${layer.heads.kept} heads, ${layer.neurons.kept} neurons`));
 * const logits = small.forward(batch.x, { training: false }); // = pruned.forward(…) within 1e-5
 * ```
 */
export async function shrinkBertModel(
  model: BertModel,
  options: { name?: string } = {},
): Promise<{ model: BertModel; report: ShrinkBertReport }> {
  if (model.variables().some((entry) => entry.variable.isDisposed)) {
    throw new FinepruneError({
      code: ErrorCodes.DISPOSED,
      message: 'shrinkBertModel() was given a disposed model.',
      fix: 'Shrink the model before disposing it.',
    });
  }
  const selections = await selectUnits(model);
  const config = shrunkConfig(model.config, selections);
  const small = createBertModel({
    config,
    task: model.task,
    freezeEmbeddings: model.embeddingsFrozen,
    name: options.name ?? model.name,
  });
  const headSize = model.config.hiddenSize / model.config.numHeads;
  const sources = new Map(model.variables().map((entry) => [entry.name, entry.variable]));
  const sourceParameters = new Map(model.parameters().map((parameter) => [parameter.name, parameter]));
  /**
   * The kept entries of a variable as a fresh tensor. Copied through host memory: tfjs-backend-wasm
   * 4.22's Gather records a rank-4 shape on its output's data, which its fused MatMul then refuses
   * as a bias.
   */
  const pick = async (target: tf.Variable, source: tf.Tensor, name: string) => {
    const selection = selectionOf(name, selections, headSize);
    const picked = selection ? tf.gather(source, selection.indices, selection.axis) : source;
    const values = await picked.data();
    if (picked !== source) picked.dispose();
    tf.tidy(() => target.assign(tf.tensor(values, target.shape, 'float32')));
  };
  for (const entry of small.variables()) {
    const parameter = sourceParameters.get(entry.name);
    const source = parameter ? parameter.effectiveWeight() : sources.get(entry.name)!;
    await pick(entry.variable, source, entry.name);
    if (parameter) source.dispose();
  }
  for (const parameter of small.parameters()) {
    await pick(parameter.mask, sourceParameters.get(parameter.name)!.mask, parameter.name);
  }
  small.setDropoutState(model.dropoutState());
  const report: ShrinkBertReport = {
    layers: selections.map((selection, layer) => ({
      heads: { before: layerHeads(model.config, layer), kept: selection.heads.length },
      neurons: {
        before: sources.get(`layer_${layer}/ffn/intermediate/bias`)!.size,
        kept: selection.neurons.length,
      },
    })),
    encoderEntries: { before: entriesOf(model), after: entriesOf(small) },
  };
  return { model: small, report };
}
