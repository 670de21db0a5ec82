import * as tf from '@tensorflow/tfjs-core';
import { setBackend, FUSED_KERNELS, fusedAdamStep } from '@fineprune/tensor';
import { it } from 'vitest';
import { registerWebGPUBackend, disposeWebGPU } from './webgpu';
import { registerFusedWebGPUKernels, unregisterFusedWebGPUKernels } from './fused-kernels';
async function time(f: () => tf.Tensor[] | tf.Tensor) { const r = [] as number[]; for (let i = 0; i < 6; i++) { const s = performance.now(); const o = tf.tidy(() => [f()].flat()); await Promise.all(o.map((t) => t.data())); tf.dispose(o); r.push(performance.now() - s); } r.sort((a, b) => a - b); return r[2]!.toFixed(1); }
it('scratch', async () => {
  registerWebGPUBackend();
  await setBackend('webgpu');
  const x = tf.randomNormal([512, 128]); const g = tf.ones([128]); const b = tf.zeros([128]); const dy = tf.randomNormal([512, 128]);
  const s = tf.randomNormal([4, 2, 128, 128]); const m = tf.zeros([4, 1, 1, 128]); const ds = tf.randomNormal([4, 2, 128, 128]);
  const h = tf.randomNormal([512, 512]); const dh = tf.randomNormal([512, 512]);
  const w = tf.randomNormal([128, 512]);
  const ln = (xx: tf.Tensor) => tf.engine().runKernel(FUSED_KERNELS.layerNorm, { x: xx, gamma: g, beta: b }, { epsilon: 1e-12 }) as tf.Tensor;
  const lnChain = (xx: tf.Tensor) => { const { mean, variance } = tf.moments(xx, 1, true); return tf.add(tf.mul(tf.mul(tf.sub(xx, mean), tf.rsqrt(tf.add(variance, 1e-12))), g), b); };
  const sm = (ss: tf.Tensor) => tf.engine().runKernel(FUSED_KERNELS.attentionSoftmax, { scores: ss, mask: m }, { scale: 0.125 }) as tf.Tensor;
  const smChain = (ss: tf.Tensor) => tf.softmax(tf.add(tf.mul(ss, 0.125), m));
  const ge = (hh: tf.Tensor) => tf.engine().runKernel(FUSED_KERNELS.gelu, { x: hh }) as tf.Tensor;
  const geChain = (hh: tf.Tensor) => tf.mul(hh, tf.mul(0.5, tf.add(1, tf.erf(tf.mul(hh, Math.SQRT1_2)))));
  const sc = { beta1: 0.9, beta2: 0.999, stepSize: 1e-3, epsilonHat: 1e-8, decay: 0 };
  const adamChain = () => { const first = tf.add(tf.mul(w, 0.9), tf.mul(w, 0.1)); const second = tf.add(tf.mul(w, 0.999), tf.mul(tf.square(w), 0.001)); return [tf.sub(w, tf.div(tf.mul(first, 1e-3), tf.add(tf.sqrt(second), 1e-8))), first, second]; };
  for (let round = 0; round < 2; round++) {
    console.log('LN fwd', await time(() => lnChain(x)), await time(() => ln(x)));
    console.log('LN bwd', await time(() => tf.grads((a: tf.Tensor) => lnChain(a))([x], dy)), await time(() => tf.grads((a: tf.Tensor) => ln(a))([x], dy)));
    console.log('softmax fwd', await time(() => smChain(s)), await time(() => sm(s)));
    console.log('softmax bwd', await time(() => tf.grads((a: tf.Tensor) => smChain(a))([s], ds)), await time(() => tf.grads((a: tf.Tensor) => sm(a))([s], ds)));
    console.log('gelu fwd', await time(() => geChain(h)), await time(() => ge(h)));
    console.log('gelu bwd', await time(() => tf.grads((a: tf.Tensor) => geChain(a))([h], dh)), await time(() => tf.grads((a: tf.Tensor) => ge(a))([h], dh)));
    console.log('adam', await time(adamChain), await time(() => fusedAdamStep(w, w, w, w, sc)!));
  }
  await disposeWebGPU();
});
