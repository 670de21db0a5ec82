import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { setBackend } from './backend';
import { WASM_HEAP_LIMIT_BYTES, wasmHeapExhausted } from './wasm-heap';

describe('wasmHeapExhausted', () => {
  it('turns a wasm RuntimeError on the wasm backend into WASM_HEAP_EXHAUSTED naming the size and the limit', async () => {
    await setBackend('wasm');
    const trap = new WebAssembly.RuntimeError('memory access out of bounds');
    const error = wasmHeapExhausted(trap, 'The training step');
    const heapBytes = (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length;
    expect(error?.code).toBe('WASM_HEAP_EXHAUSTED');
    expect(error?.details).toEqual({ heapBytes, limitBytes: 4_294_901_760 });
    expect(error?.message).toContain(`at ${heapBytes} bytes of at most ${WASM_HEAP_LIMIT_BYTES}`);
    expect(error?.message).toContain('memory access out of bounds');
    expect(error?.cause).toBe(trap);
    // Other errors are not the heap's.
    expect(wasmHeapExhausted(new Error('shapes differ'), 'The training step')).toBeUndefined();
  });

  it('leaves errors alone on other backends', async () => {
    await setBackend('cpu');
    expect(wasmHeapExhausted(new WebAssembly.RuntimeError('unreachable'), 'x')).toBeUndefined();
  });
});
