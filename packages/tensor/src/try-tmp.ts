import * as tf from '@tensorflow/tfjs-core';
import { setBackend, wasmThreadsInUse, fusedAdamStep } from '/work/h19-threads/packages/tensor/src/index.ts';
import { wasmHeapOf } from '/work/h19-threads/packages/tensor/src/wasm-heap.ts';
const threads = Number(process.argv[2] ?? 2);
const sel = await setBackend('wasm', { wasmThreads: threads });
console.log(sel.explanation, wasmThreadsInUse(), typeof URL.createObjectURL, (await import('node:os')).cpus().length);
const heap = wasmHeapOf();
console.log('heap', heap !== undefined, heap && heap.memory.buffer instanceof SharedArrayBuffer);
const a = tf.randomNormal([512, 1024]); const c = tf.randomNormal([1024, 1024]);
for (let r = 0; r < 3; r++) { const s = performance.now(); const p = tf.matMul(a, c); await p.data(); p.dispose(); const ms = performance.now() - s; console.log('GFLOP/s', (2*512*1024*1024/ms/1e6).toFixed(1)); }
console.log('script end at', performance.now().toFixed(0));
process.on('exit', () => console.log('exit at', performance.now().toFixed(0)));
