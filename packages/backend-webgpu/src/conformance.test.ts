import { setBackend } from '@fineprune/tensor';
import { runConformance } from '@fineprune/tensor/conformance';
import { topV } from '@fineprune/masks';
import { magnitude } from '@fineprune/scores';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { disposeWebGPU, registerWebGPUBackend } from './webgpu';

// The whole suite on webgpu (Dawn; software OpenGL on machines without a GPU), and the plugin cases on
// cpu and wasm too (@fineprune/tensor's own tests run the rest of the suite on cpu and wasm).
beforeAll(() => {
  registerWebGPUBackend();
});
afterAll(async () => {
  await disposeWebGPU();
  await setBackend('wasm');
});

const plugins = { topV, magnitude };
runConformance({ backend: 'webgpu', describe, it, expect, plugins });
runConformance({ backend: 'wasm', describe, it, expect, plugins, groups: ['plugins'] });
runConformance({ backend: 'cpu', describe, it, expect, plugins, groups: ['plugins'] });
