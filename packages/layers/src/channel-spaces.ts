import type * as tfl from '@tensorflow/tfjs-layers';

type Layer = tfl.layers.Layer;

/**
 * A set of channels that several layers share: the output units of one Dense or Conv2D layer (or
 * of every branch of an `Add`), followed through the layers that keep channels apart (batch
 * normalisation, activations, pooling, depthwise convolutions, `Flatten`) to the Dense and Conv2D
 * layers that read them. Removing channel `u` removes it from every layer listed here.
 */
export interface ChannelSpace {
  /** Number of channels. */
  readonly count: number;
  /** Dense and Conv2D layers whose output units are the channels. */
  readonly producers: readonly Layer[];
  /** Layers the channels pass through one by one, in model order (BN, activations, depthwise, pooling, Flatten, Add). */
  readonly passes: readonly Layer[];
  /** Dense and Conv2D layers that read the channels; `repeats` > 1 after a `Flatten` of `[h, w, c]`. */
  readonly readers: ReadonlyArray<{ readonly layer: Layer; readonly repeats: number }>;
}

/**
 * A Dense or Conv2D layer whose output units `structures()` leaves out, with why.
 *
 * @example
 * ```ts
 * for (const { layer, reason } of prunable.skippedStructures()) console.log(`${layer}: ${reason}`);
 * ```
 */
export interface SkippedStructure {
  /** The producing layer. */
  readonly layer: string;
  readonly reason: string;
}

/** What {@link channelSpaces} finds: the spaces that can be cut, and the producers it left out. */
export interface ChannelAnalysis {
  readonly spaces: readonly ChannelSpace[];
  readonly skipped: readonly SkippedStructure[];
}

/** The parts of stock layers the analysis reads; public in JavaScript, not all in the typings. */
interface LayerFields {
  inboundNodes: Array<{ inboundLayers: Layer[]; inputShapes: unknown }>;
  layers?: Layer[];
  units?: number;
  filters?: number;
  dataFormat?: string;
  depthMultiplier?: number;
  axis?: number | number[];
  activation?: { getClassName(): string } | null;
}

interface Draft {
  count: number;
  producers: Layer[];
  passes: Layer[];
  readers: Array<{ layer: Layer; repeats: number }>;
  blocked: string[];
}

/** Where a layer's output lies: in which draft space, and how many times it repeats after Flatten. */
interface Placement {
  space: number;
  repeats: number;
}

const POINTWISE = new Set(['Activation', 'ReLU', 'LeakyReLU', 'ELU', 'ThresholdedReLU', 'Dropout']);
const POOLING = new Set(['MaxPooling2D', 'AveragePooling2D', 'GlobalAveragePooling2D', 'GlobalMaxPooling2D']);

function fields(layer: Layer): LayerFields {
  return layer as unknown as LayerFields;
}

function channelsLast(layer: Layer): boolean {
  const format = fields(layer).dataFormat;
  return format === undefined || format === 'channelsLast';
}

/** The input shape of a layer with one inbound node and one input. */
function inputShape(layer: Layer): number[] {
  const shapes = fields(layer).inboundNodes[0]!.inputShapes as number[] | number[][];
  return (Array.isArray(shapes[0]) ? shapes[0] : shapes) as number[];
}

/** True when a batch-normalisation layer normalises the last axis only. */
function normalisesLastAxis(layer: Layer): boolean {
  const axis = fields(layer).axis;
  const rank = inputShape(layer).length;
  const single = Array.isArray(axis) ? (axis.length === 1 ? axis[0] : undefined) : axis;
  return single === -1 || single === rank - 1;
}

/** Channel-wise layers: each output channel depends on the same input channel only. */
function passesChannels(layer: Layer): boolean {
  const className = layer.getClassName();
  if (className === 'Activation') return fields(layer).activation?.getClassName() !== 'softmax';
  if (POINTWISE.has(className)) return true;
  if (POOLING.has(className)) return channelsLast(layer);
  if (className === 'BatchNormalization') return normalisesLastAxis(layer);
  if (className === 'DepthwiseConv2D')
    return channelsLast(layer) && (fields(layer).depthMultiplier ?? 1) === 1;
  return false;
}

/** Union–find over draft spaces (an `Add` joins the spaces of its inputs). */
class Joins {
  private readonly parent: number[] = [];
  add(): number {
    this.parent.push(this.parent.length);
    return this.parent.length - 1;
  }
  find(index: number): number {
    let root = index;
    while (this.parent[root] !== root) root = this.parent[root]!;
    this.parent[index] = root;
    return root;
  }
  join(a: number, b: number): number {
    const [ra, rb] = [this.find(a), this.find(b)];
    if (ra !== rb) this.parent[rb] = ra;
    return ra;
  }
}

class Analysis {
  readonly drafts: Draft[] = [];
  readonly joins = new Joins();
  readonly placements = new Map<Layer, Placement>();

  space(count: number, blocked?: string): number {
    this.drafts.push({ count, producers: [], passes: [], readers: [], blocked: blocked ? [blocked] : [] });
    return this.joins.add();
  }

  draft(index: number): Draft {
    return this.drafts[this.joins.find(index)]!;
  }

  block(index: number, reason: string): void {
    this.draft(index).blocked.push(reason);
  }

  /** Where an input layer's output lies; a layer outside the analysis (the model input) is a fixed space. */
  placementOf(layer: Layer): Placement {
    let placement = this.placements.get(layer);
    if (!placement) {
      const shape = layer.outputShape as number[];
      placement = { space: this.space(shape.at(-1) ?? 1, 'it is the model input'), repeats: 1 };
      this.placements.set(layer, placement);
    }
    return placement;
  }

  place(layer: Layer, placement: Placement): void {
    this.placements.set(layer, placement);
  }

  /** Blocks the spaces of every input of a layer the analysis cannot follow; its output is a fixed space. */
  opaque(layer: Layer, inputs: readonly Layer[], why: string): void {
    for (const input of inputs) {
      this.block(
        this.placementOf(input).space,
        `layer "${layer.name}" (${layer.getClassName()}) reads it, ${why}`,
      );
    }
    const shape = layer.outputShape as number[] | number[][];
    const last = Array.isArray(shape[0]) ? 1 : ((shape as number[]).at(-1) ?? 1);
    this.place(layer, { space: this.space(last, `it comes from layer "${layer.name}"`), repeats: 1 });
  }

  /** A Dense or Conv2D layer: a reader of its input's space and the producer of a new one. */
  producer(layer: Layer, input: Layer, count: number): void {
    const placement = this.placementOf(input);
    if (layer.getClassName() === 'Conv2D' && placement.repeats !== 1)
      this.block(placement.space, `Conv2D layer "${layer.name}" reads it flattened`);
    this.draft(placement.space).readers.push({ layer, repeats: placement.repeats });
    const space = this.space(count);
    this.draft(space).producers.push(layer);
    this.place(layer, { space, repeats: 1 });
  }

  pass(layer: Layer, input: Layer): void {
    const placement = this.placementOf(input);
    if (placement.repeats !== 1 && !POINTWISE.has(layer.getClassName()))
      this.block(placement.space, `layer "${layer.name}" (${layer.getClassName()}) reads it flattened`);
    this.draft(placement.space).passes.push(layer);
    this.place(layer, placement);
  }

  flatten(layer: Layer, input: Layer): void {
    const placement = this.placementOf(input);
    const spatial = inputShape(layer).slice(1, -1);
    const size = spatial.reduce((a, b) => a * (b ?? Number.NaN), 1);
    if (!Number.isInteger(size)) {
      this.opaque(layer, [input], 'and its input has no fixed size');
      return;
    }
    this.draft(placement.space).passes.push(layer);
    this.place(layer, { space: placement.space, repeats: placement.repeats * size });
  }

  add(layer: Layer, inputs: readonly Layer[]): void {
    const placements = inputs.map((input) => this.placementOf(input));
    const repeats = placements[0]!.repeats;
    if (placements.some((placement) => placement.repeats !== repeats)) {
      this.opaque(layer, inputs, 'and its inputs are flattened differently');
      return;
    }
    let space = placements[0]!.space;
    for (const placement of placements.slice(1)) {
      const [a, b] = [this.draft(space), this.draft(placement.space)];
      if (a === b) continue;
      if (a.count !== b.count) {
        this.opaque(layer, inputs, 'and its inputs have different channel counts');
        return;
      }
      space = this.joins.join(space, placement.space);
      const root = this.drafts[this.joins.find(space)]!;
      const other = root === a ? b : a;
      root.producers.push(...other.producers);
      root.passes.push(...other.passes);
      root.readers.push(...other.readers);
      root.blocked.push(...other.blocked);
    }
    this.draft(space).passes.push(layer);
    this.place(layer, { space, repeats });
  }

  visit(layer: Layer): void {
    const nodes = fields(layer).inboundNodes;
    const inputs = nodes.length === 1 ? nodes[0]!.inboundLayers : [];
    const className = layer.getClassName();
    if (nodes.length !== 1) {
      for (const node of nodes) this.opaque(layer, node.inboundLayers, 'and it is called more than once');
      return;
    }
    if (inputs.length === 0) {
      this.place(layer, {
        space: this.space((layer.outputShape as number[]).at(-1) ?? 1, 'it is the model input'),
        repeats: 1,
      });
      return;
    }
    const input = inputs[0]!;
    if (className === 'Add') this.add(layer, inputs);
    else if (inputs.length !== 1) this.opaque(layer, inputs, 'which structures() cannot follow');
    else if (className === 'Dense') this.producer(layer, input, fields(layer).units!);
    else if (className === 'Conv2D' && channelsLast(layer))
      this.producer(layer, input, fields(layer).filters!);
    else if (className === 'Flatten') this.flatten(layer, input);
    else if (passesChannels(layer)) this.pass(layer, input);
    else this.opaque(layer, inputs, 'which structures() cannot follow');
  }
}

/**
 * Follows every Dense and Conv2D layer's output channels through the model's graph, for
 * `structures()` and {@link shrink}: the channel spaces that can be cut, and the producers whose
 * channels cannot (they reach a model output, a layer the analysis does not know, a `Concatenate`,
 * a nested model, a layer called twice).
 *
 * @example
 * ```ts
 * const { spaces, skipped } = channelSpaces(model);
 * for (const space of spaces) console.log(space.producers.map((layer) => layer.name), space.count);
 * ```
 */
export function channelSpaces(model: tfl.LayersModel): ChannelAnalysis {
  const analysis = new Analysis();
  const layers = [...model.layers]; // in topological order; a nested model is one opaque layer
  for (const layer of layers) {
    if (Array.isArray(fields(layer).layers)) {
      analysis.opaque(
        layer,
        fields(layer).inboundNodes.flatMap((node) => node.inboundLayers),
        'and it is a nested model',
      );
      continue;
    }
    analysis.visit(layer);
  }
  for (const output of model.outputs) {
    const placement = analysis.placements.get(output.sourceLayer as Layer);
    if (placement) analysis.block(placement.space, 'it is a model output');
  }
  const spaces: ChannelSpace[] = [];
  const skipped: SkippedStructure[] = [];
  analysis.drafts.forEach((draft, index) => {
    if (analysis.joins.find(index) !== index || draft.producers.length === 0) return;
    if (draft.blocked.length > 0) {
      for (const producer of draft.producers)
        skipped.push({ layer: producer.name, reason: `its output channels stay: ${draft.blocked[0]}` });
      return;
    }
    const order = new Map(layers.map((layer, position) => [layer, position]));
    const byOrder = (a: Layer, b: Layer) => order.get(a)! - order.get(b)!;
    spaces.push({
      count: draft.count,
      producers: [...draft.producers].sort(byOrder),
      passes: [...draft.passes].sort(byOrder),
      readers: [...draft.readers].sort((a, b) => byOrder(a.layer, b.layer)),
    });
  });
  return { spaces, skipped };
}
