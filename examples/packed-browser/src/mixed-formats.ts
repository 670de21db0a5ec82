/**
 * One Node process that loads the installed packages both ways: `import` (the ES-module build) and
 * `require` (the CommonJS build), as an application does when one of its dependencies is CommonJS.
 * The test bundles it as an ES module with the packages external, runs it, and checks the JSON it
 * prints: the two builds are separate copies, yet they share one runtime state.
 */
import { createRequire } from 'node:module';
import * as layersFromImport from '@fineprune/layers';
import * as tensorFromImport from '@fineprune/tensor';
import * as runtimeFromImport from '@fineprune/tensor/runtime';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';

const require = createRequire(import.meta.url);
const tensorFromRequire = require('@fineprune/tensor') as typeof tensorFromImport;
const runtimeFromRequire = require('@fineprune/tensor/runtime') as typeof runtimeFromImport;
const layersFromRequire = require('@fineprune/layers') as typeof layersFromImport;

/** What the program prints (as one line of JSON). */
export interface MixedFormatsResult {
  /** Whether each function or class differs between the two builds (they must: two copies). */
  twoCopies: { setBackend: boolean; FinepruneError: boolean; registerPrunableLayer: boolean };
  provider: { selected: string; active: string; sum: number | undefined };
  errors: {
    fromRequire: { code?: string; message: string } | undefined;
    fromImport: { code?: string; message: string } | undefined;
    requireErrorIsImportClass: boolean;
    importErrorIsRequireClass: boolean;
    plainErrorIsFinepruneError: boolean;
  };
  layers: { seenThroughRequire: boolean; spec: { weights: readonly string[]; kind: string } | null };
  syncBuiltins: { esm: { code?: string; message: string } | 'no error'; cjsGunzipSync: string };
}

async function errorOf(run: () => unknown): Promise<unknown> {
  try {
    await run();
  } catch (error) {
    return error;
  }
  return undefined;
}

function describe(error: unknown): { code?: string; message: string } | undefined {
  if (error === undefined) return undefined;
  const { code, message } = error as { code?: string; message?: string };
  return { ...(code === undefined ? {} : { code }), message: String(message ?? error) };
}

async function main(): Promise<void> {
  // 1. A backend provider registered through import, selected through require.
  tensorFromImport.registerBackendProvider({
    name: 'mixed-formats-cpu',
    priority: -1,
    async setup() {
      // The cpu backend under another name: its factory, and its kernels registered for the name.
      if (tf.findBackendFactory('mixed-formats-cpu') == null) {
        tf.registerBackend('mixed-formats-cpu', () => new MathBackendCPU(), -1);
        for (const kernel of tf.getKernelsForBackend('cpu')) {
          tf.registerKernel({ ...kernel, backendName: 'mixed-formats-cpu' });
        }
      }
    },
  });
  const selection = await tensorFromRequire.setBackend('mixed-formats-cpu');
  const sum = tf.tidy(() => tf.add(tf.scalar(2), tf.scalar(3)).dataSync()[0]);

  // 2. An error thrown by one build, tested with instanceof against the other build's class.
  const fromRequire = await errorOf(() => tensorFromRequire.setBackend('no-such-backend'));
  const fromImport = await errorOf(() => tensorFromImport.setBackend('no-such-backend'));

  // 3. A layer class made prunable through import, seen by the adapter loaded through require.
  layersFromImport.registerPrunableLayer('MixedFormatsBilinear', { weights: ['kernel'], kind: 'bilinear' });

  // 4. Synchronous built-ins on a Node without process.getBuiltinModule (20.0–20.15): the ES-module
  //    build has no require, the CommonJS build has its own.
  const process_ = process as { getBuiltinModule?: unknown };
  const getBuiltinModule = process_.getBuiltinModule;
  delete process_.getBuiltinModule;
  const esmSync = await errorOf(() => runtimeFromImport.nodeBuiltinSync('zlib', 'a synchronous read'));
  let cjsSync: string;
  try {
    cjsSync = typeof runtimeFromRequire.nodeBuiltinSync('zlib', 'a synchronous read').gunzipSync;
  } finally {
    process_.getBuiltinModule = getBuiltinModule;
  }

  const result: MixedFormatsResult = {
    twoCopies: {
      setBackend: tensorFromImport.setBackend !== tensorFromRequire.setBackend,
      FinepruneError: tensorFromImport.FinepruneError !== tensorFromRequire.FinepruneError,
      registerPrunableLayer:
        layersFromImport.registerPrunableLayer !== layersFromRequire.registerPrunableLayer,
    },
    provider: { selected: selection.backend, active: tf.getBackend(), sum },
    errors: {
      fromRequire: describe(fromRequire),
      fromImport: describe(fromImport),
      requireErrorIsImportClass: fromRequire instanceof tensorFromImport.FinepruneError,
      importErrorIsRequireClass: fromImport instanceof tensorFromRequire.FinepruneError,
      plainErrorIsFinepruneError: new Error('plain') instanceof tensorFromRequire.FinepruneError,
    },
    layers: {
      seenThroughRequire: layersFromRequire.prunableLayerClasses().includes('MixedFormatsBilinear'),
      spec: layersFromRequire.prunableLayerSpec('MixedFormatsBilinear') ?? null,
    },
    syncBuiltins: { esm: describe(esmSync) ?? 'no error', cjsGunzipSync: cjsSync },
  };
  console.log(JSON.stringify(result));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
