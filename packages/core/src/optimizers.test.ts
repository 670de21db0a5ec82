import * as tf from '@tensorflow/tfjs-core';
import { setBackend, withLeakGuard } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { adam, sgd } from './optimizers';

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`optimizers on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('SGD: θ ← θ − αg, and with momentum v ← μv + g', async () => {
      await withLeakGuard(() => {
        const w = tf.tidy(() => tf.variable(tf.tensor([1, -2])));
        const g = tf.tensor([0.5, 1]);
        const plain = sgd({ learningRate: 0.1 });
        plain.apply([{ name: 'w', variable: w, gradient: g }], 0);
        expect(Array.from(w.dataSync())).toEqual([Math.fround(1 - 0.05), Math.fround(-2 - 0.1)]);
        const heavy = sgd({ learningRate: 0.1, momentum: 0.9 });
        tf.tidy(() => w.assign(tf.tensor([1, -2])));
        heavy.apply([{ name: 'w', variable: w, gradient: g }], 0); // v = g, w = w − 0.1g
        heavy.apply([{ name: 'w', variable: w, gradient: g }], 1); // v = 1.9g, w −= 0.19g
        const expected = [1 - 0.05 - 0.095, -2 - 0.1 - 0.19];
        for (const [index, value] of Array.from(w.dataSync()).entries())
          expect(value).toBeCloseTo(expected[index]!, 6);
        heavy.dispose();
        plain.dispose();
        tf.dispose([w, g]);
      });
    });

    it('Adam: two steps against the update written out by hand (tolerance 1e-6)', async () => {
      await withLeakGuard(() => {
        const w = tf.tidy(() => tf.variable(tf.tensor([0.5])));
        const optimizer = adam({ learningRate: 0.01, weightDecay: 0.1 });
        const gradients = [0.2, -0.4];
        let m = 0;
        let v = 0;
        let theta = 0.5;
        for (const [t, g] of gradients.entries()) {
          const gradient = tf.tensor([g]);
          optimizer.apply([{ name: 'w', variable: w, gradient }], t);
          gradient.dispose();
          m = 0.9 * m + 0.1 * g;
          v = 0.999 * v + 0.001 * g * g;
          const mHat = m / (1 - 0.9 ** (t + 1));
          const vHat = v / (1 - 0.999 ** (t + 1));
          theta = theta - (0.01 * mHat) / (Math.sqrt(vHat) + 1e-8) - 0.01 * 0.1 * theta;
          expect(w.dataSync()[0]).toBeCloseTo(theta, 6);
        }
        optimizer.dispose();
        w.dispose();
      });
    });

    it('Adam state restored into a new optimizer continues exactly', async () => {
      const gradientAt = (step: number) => tf.tensor([Math.sin(step), Math.cos(step * 1.3)]);
      const straight = tf.tidy(() => tf.variable(tf.tensor([1, 1])));
      const first = adam({ learningRate: 0.05 });
      for (let step = 0; step < 6; step += 1) {
        const gradient = gradientAt(step);
        first.apply([{ name: 'w', variable: straight, gradient }], step);
        gradient.dispose();
      }
      const resumed = tf.tidy(() => tf.variable(tf.tensor([1, 1])));
      const before = adam({ learningRate: 0.05 });
      for (let step = 0; step < 3; step += 1) {
        const gradient = gradientAt(step);
        before.apply([{ name: 'w', variable: resumed, gradient }], step);
        gradient.dispose();
      }
      const after = adam({ learningRate: 0.05 });
      after.loadState(before.state(), [{ name: 'w', variable: resumed }]);
      before.dispose();
      for (let step = 3; step < 6; step += 1) {
        const gradient = gradientAt(step);
        after.apply([{ name: 'w', variable: resumed, gradient }], step);
        gradient.dispose();
      }
      expect(Array.from(resumed.dataSync())).toEqual(Array.from(straight.dataSync()));
      expect(() =>
        after.loadState({ 'nobody/m': tf.zeros([2]) }, [{ name: 'w', variable: resumed }]),
      ).toThrow(/CHECKPOINT_MISMATCH/);
      tf.dispose([straight, resumed]);
      first.dispose();
      after.dispose();
    });

    it("Adam with slots: 'host' matches tensor slots bit for bit, saves and restores them, leaks nothing", async () => {
      const gradientAt = (step: number) =>
        tf.tensor2d([Math.sin(step), Math.cos(step * 1.3), 1e-3 * step, -2, 0.25, step], [2, 3]);
      const start = () => tf.tidy(() => tf.variable(tf.tensor2d([1, -1, 0.5, 0, 3, -0.2], [2, 3])));
      const options = { learningRate: 0.05, weightDecay: 0.01 };
      const [onTensors, onHost, resumed] = [start(), start(), start()];
      const reference = adam(options);
      const host = adam({ ...options, slots: 'host' });
      const before = adam({ ...options, slots: 'host' });
      const numTensors = tf.memory().numTensors;
      for (let step = 0; step < 6; step += 1) {
        const gradient = gradientAt(step);
        reference.apply([{ name: 'w', variable: onTensors, gradient }], step);
        host.apply([{ name: 'w', variable: onHost, gradient }], step);
        if (step < 3) before.apply([{ name: 'w', variable: resumed, gradient }], step);
        gradient.dispose();
        // Host slots live outside TF.js: only the reference optimizer's two slots are new tensors.
        expect(tf.memory().numTensors).toBe(numTensors + 2);
      }
      // Exact: Adam with its moments outside the heap runs the same float32 operations.
      expect(Array.from(onHost.dataSync())).toEqual(Array.from(onTensors.dataSync()));
      const exported = host.state();
      expect(Object.keys(exported).sort()).toEqual(['w/m', 'w/v']);
      for (const slot of ['w/m', 'w/v']) {
        expect(exported[slot]!.shape).toEqual([2, 3]);
        expect(Array.from(exported[slot]!.dataSync())).toEqual(
          Array.from(reference.state()[slot]!.dataSync()),
        );
      }
      // hostState: the same values as state(), from the live arrays, with no tensor made.
      const tensorsBefore = tf.memory().numTensors;
      const arrays = host.hostState!();
      expect(tf.memory().numTensors).toBe(tensorsBefore);
      for (const slot of ['w/m', 'w/v']) {
        expect(arrays[slot]!.shape).toEqual([2, 3]);
        expect(Array.from(arrays[slot]!.values)).toEqual(Array.from(exported[slot]!.dataSync()));
      }
      expect(reference.hostState).toBeUndefined();
      const after = adam({ ...options, slots: 'host' });
      after.loadState(before.state(), [{ name: 'w', variable: resumed }]);
      before.dispose();
      for (let step = 3; step < 6; step += 1) {
        const gradient = gradientAt(step);
        after.apply([{ name: 'w', variable: resumed, gradient }], step);
        gradient.dispose();
      }
      expect(Array.from(resumed.dataSync())).toEqual(Array.from(onTensors.dataSync()));
      for (const optimizer of [reference, host, after]) optimizer.dispose();
      tf.dispose([onTensors, onHost, resumed]);
      expect(tf.memory().numTensors).toBe(numTensors - 3);
      expect(() => adam({ learningRate: 0.1, slots: 'disk' as never })).toThrow(/INVALID_ARGUMENT/);
    });

    it('rejects bad hyper-parameters with FinepruneErrors', () => {
      expect(() => sgd({ learningRate: 0 })).toThrow(/learning rate must be a positive/);
      expect(() => sgd({ learningRate: 0.1, momentum: 1 })).toThrow(/momentum/);
      expect(() => adam({ learningRate: -1 })).toThrow(/INVALID_ARGUMENT/);
      expect(() => adam({ learningRate: 1e-3, beta2: 1 })).toThrow(/beta2/);
    });
  });
}
