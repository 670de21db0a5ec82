import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without declarations
import { measureBundle } from '../scripts/bundle-size.mjs';

describe('the browser bundle of @fineprune/sparse', () => {
  it('holds no part of the training stack (no core, no tensor main entry, no gradients, no backend)', async () => {
    const summary = await measureBundle({ fromSource: true });
    expect(summary.forbidden).toEqual([]);
    // What it does hold: its own sources and the three side-effect-free subpaths of @fineprune/tensor.
    const fromTensor = (summary.inputs as string[]).filter((file) => file.includes('tensor/src/')).sort();
    expect(fromTensor).toEqual([
      '../tensor/src/errors.ts',
      '../tensor/src/wasm-binary.ts',
      '../tensor/src/wasm-heap.ts',
    ]);
  });
});
