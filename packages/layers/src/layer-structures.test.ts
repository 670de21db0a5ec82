import * as tfl from '@tensorflow/tfjs-layers';
import { checkStructures } from '@fineprune/core';
import { setBackend } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { fromLayersModel } from './from-layers-model';
import { convChain, depthwiseBlock, residualBlock } from './structure-models';
import { mlp, release } from './test-support';

beforeAll(async () => {
  await setBackend('cpu');
});

describe('structures() of a LayersModel', () => {
  it('lists the neurons of a Dense stack with the next layer rows; the output layer stays', () => {
    const prunable = fromLayersModel(mlp(1));
    expect(prunable.structures()).toEqual([
      {
        name: 'fc1/neurons',
        kind: 'neuron',
        count: 16,
        members: [
          { parameter: 'fc1/kernel', axis: 1, role: 'output' },
          { parameter: 'fc2/kernel', axis: 0, role: 'input' },
        ],
      },
      {
        name: 'fc2/neurons',
        kind: 'neuron',
        count: 12,
        members: [
          { parameter: 'fc2/kernel', axis: 1, role: 'output' },
          { parameter: 'out/kernel', axis: 0, role: 'input' },
        ],
      },
    ]);
    expect(prunable.skippedStructures()).toEqual([
      { layer: 'out', reason: 'its output channels stay: it is a model output' },
    ]);
    checkStructures(prunable.structures(), prunable.parameters());
    release(prunable);
  });

  it('follows filters through batch norm to the next convolution, and through Flatten with repeats', () => {
    const prunable = fromLayersModel(convChain());
    expect(prunable.structures()).toEqual([
      {
        name: 'conv1/filters',
        kind: 'filter',
        count: 6,
        members: [
          { parameter: 'conv1/kernel', axis: 3, role: 'output' },
          { parameter: 'conv2/kernel', axis: 2, role: 'input' },
        ],
      },
      {
        name: 'conv2/filters',
        kind: 'filter',
        count: 5,
        // conv2 is valid 3×3 on 6×6: a 4×4 map, so the Dense reads each filter at 16 positions.
        members: [
          { parameter: 'conv2/kernel', axis: 3, role: 'output' },
          { parameter: 'fc/kernel', axis: 0, role: 'input', repeats: 16 },
        ],
      },
      {
        name: 'fc/neurons',
        kind: 'neuron',
        count: 7,
        members: [
          { parameter: 'fc/kernel', axis: 1, role: 'output' },
          { parameter: 'logits/kernel', axis: 0, role: 'input' },
        ],
      },
    ]);
    checkStructures(prunable.structures(), prunable.parameters());
    release(prunable);
  });

  it('carries filters through a depthwise convolution', () => {
    const prunable = fromLayersModel(depthwiseBlock());
    expect(prunable.structures()[0]).toEqual({
      name: 'conv_in/filters',
      kind: 'filter',
      count: 6,
      members: [
        { parameter: 'conv_in/kernel', axis: 3, role: 'output' },
        { parameter: 'depthwise/depthwiseKernel', axis: 2, role: 'output' },
        { parameter: 'conv_out/kernel', axis: 2, role: 'input' },
      ],
    });
    checkStructures(prunable.structures(), prunable.parameters());
    release(prunable);
  });

  it('makes the channels of an Add one structure across every branch and reader', () => {
    const prunable = fromLayersModel(residualBlock());
    expect(prunable.structures()[0]).toEqual({
      name: 'stem/channels',
      kind: 'channel',
      count: 4,
      members: [
        { parameter: 'stem/kernel', axis: 3, role: 'output' },
        { parameter: 'conv_b/kernel', axis: 3, role: 'output' },
        { parameter: 'conv_b/kernel', axis: 2, role: 'input' },
        { parameter: 'conv_c/kernel', axis: 2, role: 'input' },
      ],
    });
    expect(prunable.structures().map((structure) => structure.name)).toEqual([
      'stem/channels',
      'conv_c/filters',
    ]);
    release(prunable);
  });

  it('leaves out channels read by a Concatenate, and those of excluded kernels, with the reason', () => {
    const input = tfl.input({ shape: [4] });
    const a = tfl.layers.dense({ name: 'a', units: 3 }).apply(input) as tfl.SymbolicTensor;
    const b = tfl.layers.dense({ name: 'b', units: 2 }).apply(input) as tfl.SymbolicTensor;
    const joined = tfl.layers.concatenate({ name: 'join' }).apply([a, b]) as tfl.SymbolicTensor;
    const c = tfl.layers.dense({ name: 'c', units: 5 }).apply(joined) as tfl.SymbolicTensor;
    const output = tfl.layers.dense({ name: 'd', units: 1 }).apply(c) as tfl.SymbolicTensor;
    const prunable = fromLayersModel(tfl.model({ inputs: input, outputs: output }), { exclude: 'd' });
    expect(prunable.structures()).toEqual([]);
    expect(prunable.skippedStructures()).toEqual([
      {
        layer: 'a',
        reason:
          'its output channels stay: layer "join" (Concatenate) reads it, which structures() cannot follow',
      },
      {
        layer: 'b',
        reason:
          'its output channels stay: layer "join" (Concatenate) reads it, which structures() cannot follow',
      },
      { layer: 'd', reason: 'its output channels stay: it is a model output' },
      { layer: 'c', reason: 'the kernel of layer "d" is not a prunable parameter (include / exclude)' },
    ]);
    release(prunable);
  });
});
