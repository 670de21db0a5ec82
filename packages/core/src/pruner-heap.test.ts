import { setBackend } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { adam } from './optimizers';
import { Pruner } from './pruner';
import { rejectionOf, testLinearSchedule, testMagnitude, testTopK, tinyBatches, tinyMlp } from './testing';

describe('Pruner on wasm when the heap runs out', () => {
  beforeAll(async () => {
    await setBackend('wasm');
  });

  it('reports WASM_HEAP_EXHAUSTED with the heap size and limit, not a bad batch', async () => {
    const model = tinyMlp();
    // The trap a kernel raises when the 4 GiB heap is full (exhausting it for real takes 4 GiB).
    const forward = model.forward.bind(model);
    model.forward = () => {
      throw new WebAssembly.RuntimeError('memory access out of bounds');
    };
    const pruner = new Pruner({
      model,
      scores: testMagnitude,
      mask: testTopK,
      schedule: testLinearSchedule(0.5, 10, 5),
      optimizers: { weights: adam({ learningRate: 0.01 }) },
    });
    const batch = tinyBatches()(0);
    const error = await rejectionOf(pruner.trainStep(batch));
    expect(error.code).toBe('WASM_HEAP_EXHAUSTED');
    expect(error.message).toContain('at step 0');
    expect(error.details).toMatchObject({ limitBytes: 4_294_901_760 });
    model.forward = forward;
    pruner.dispose();
    model.dispose();
  });
});
