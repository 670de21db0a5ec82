import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without declarations
import { measureBundle } from '../scripts/bundle-size.mjs';

describe('the browser bundle of @fineprune/sparse', () => {
  it('holds no part of the training stack (no core, no tensor main entry, no gradients, no backend)', async () => {
    const summary = await measureBundle({ fromSource: true });
    expect(summary.forbidden).toEqual([]);
    // What it does hold: its own sources and five side-effect-free subpaths of @fineprune/tensor
    // (errors, float16, untrusted with the modules it re-exports, wasm-binary, wasm-heap).
    const fromTensor = (summary.inputs as string[]).filter((file) => file.includes('tensor/src/')).sort();
    expect(fromTensor).toEqual([
      '../tensor/src/digest.ts',
      '../tensor/src/errors.ts',
      '../tensor/src/float16.ts',
      '../tensor/src/json-bounds.ts',
      '../tensor/src/regular-file.ts',
      '../tensor/src/runtime.ts',
      '../tensor/src/untrusted.ts',
      '../tensor/src/wasm-binary.ts',
      '../tensor/src/wasm-heap.ts',
    ]);
  });
});
