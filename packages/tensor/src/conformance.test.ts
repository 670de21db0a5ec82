import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { releaseWasmBackend, setBackend } from './backend';
import { compareOutputs, conformanceCases, runConformance } from './conformance';
import { wasmThreadsInUse } from './wasm-threads';

// The plugin cases run where the plugin packages are available (see @fineprune/backend-webgpu's
// tests); this package cannot depend on them.
runConformance({ backend: 'cpu', describe, it, expect });
runConformance({ backend: 'wasm', describe, it, expect });

describe('on the multi-threaded wasm build (2 threads, shared memory)', () => {
  beforeAll(async () => {
    releaseWasmBackend();
    await setBackend('wasm', { wasmThreads: 2 });
    expect(wasmThreadsInUse()).toBe(2);
  });
  afterAll(() => releaseWasmBackend());
  runConformance({ backend: 'wasm', describe, it, expect });
});

describe('conformance helpers', () => {
  it('compareOutputs reports the first disagreement beyond the tolerance', () => {
    expect(compareOutputs({ y: [1, 2], z: 3 }, { y: [1, 2 + 1e-6], z: 3 }, 1e-5)).toBeUndefined();
    expect(compareOutputs({ y: [1, 2] }, { y: [1, 2.1] }, 1e-5)).toMatchObject({ output: 'y', index: 1 });
    expect(compareOutputs({ y: [1, 2] }, { y: [1] }, 1e-5)).toMatchObject({ output: 'y', index: -1 });
    expect(compareOutputs({ y: [Number.NaN] }, { y: [Number.NaN] }, 1e-5)).toMatchObject({ output: 'y' });
  });

  it('lists plugin cases only for the factories given', () => {
    const names = (plugins: Parameters<typeof conformanceCases>[0]) =>
      conformanceCases(plugins).filter((testCase) => testCase.group === 'plugins').length;
    expect(names({})).toBe(0);
    const fakeMask = () => ({ compute: () => [] });
    expect(names({ topV: fakeMask })).toBe(2);
  });
});
