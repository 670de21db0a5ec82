import { describe, expect, it } from 'vitest';
import { FinepruneError } from './errors';
import { createRandom } from './random';

describe('createRandom', () => {
  it('gives the same sequence for the same seed and different ones for different seeds', () => {
    const a = createRandom(42);
    const b = createRandom(42);
    const c = createRandom(43);
    const drawsA = Array.from({ length: 100 }, () => a.nextUint32());
    const drawsB = Array.from({ length: 100 }, () => b.nextUint32());
    const drawsC = Array.from({ length: 100 }, () => c.nextUint32());
    expect(drawsA).toEqual(drawsB);
    expect(drawsA).not.toEqual(drawsC);
    expect(drawsA.every((draw) => Number.isInteger(draw) && draw >= 0 && draw < 2 ** 32)).toBe(true);
  });

  it('matches the xoshiro128** reference sequence from state [1, 2, 3, 4]', () => {
    // Computed independently (Python big-integer arithmetic) from the published algorithm.
    const random = createRandom(0);
    random.setState([1, 2, 3, 4]);
    expect(Array.from({ length: 6 }, () => random.nextUint32())).toEqual([
      11520, 0, 5927040, 70819200, 2031721883, 1637235492,
    ]);
    expect(random.state()).toEqual([1110993931, 286554632, 2431677446, 2165318166]);
  });

  it('resumes exactly from a saved state', () => {
    const random = createRandom(7);
    for (let index = 0; index < 13; index += 1) random.next();
    const saved = random.state();
    const expected = [random.next(), random.nextUint32(), [...random.permutation(10)]];
    const restored = createRandom(999);
    restored.setState(saved);
    expect([restored.next(), restored.nextUint32(), [...restored.permutation(10)]]).toEqual(expected);
    random.setState(JSON.parse(JSON.stringify(saved)));
    expect(random.next()).toBe(expected[0]);
  });

  it('draws floats in [0, 1) with a plausible mean', () => {
    const random = createRandom(1);
    let sum = 0;
    for (let index = 0; index < 20000; index += 1) {
      const value = random.next();
      expect(value >= 0 && value < 1).toBe(true);
      sum += value;
    }
    expect(Math.abs(sum / 20000 - 0.5)).toBeLessThan(0.01);
  });

  it('accepts negative and large safe-integer seeds as distinct streams', () => {
    const seeds = [0, 1, -1, 2 ** 32, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER];
    const states = seeds.map((seed) => createRandom(seed).state().join(','));
    expect(new Set(states).size).toBe(seeds.length);
  });

  it('shuffles in place and permutes 0..n-1', () => {
    const random = createRandom(3);
    const array = Array.from({ length: 50 }, (_, index) => index);
    const result = random.shuffle(array);
    expect(result).toBe(array);
    expect([...array].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, index) => index));
    expect(array).not.toEqual(Array.from({ length: 50 }, (_, index) => index));
    const permutation = random.permutation(1000);
    expect(permutation).toBeInstanceOf(Int32Array);
    expect([...permutation].sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, index) => index));
    expect(random.permutation(0).length).toBe(0);
    expect([...random.permutation(1)]).toEqual([0]);
  });

  it('shuffles without bias (every position of a 3-element shuffle about equally likely)', () => {
    const random = createRandom(11);
    const counts = new Map<string, number>();
    for (let trial = 0; trial < 6000; trial += 1) {
      const key = random.shuffle(['a', 'b', 'c']).join('');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect(counts.size).toBe(6);
    for (const count of counts.values()) expect(Math.abs(count - 1000)).toBeLessThan(150);
  });

  it('rejects bad seeds, states and sizes with INVALID_ARGUMENT', () => {
    expect(() => createRandom(1.5)).toThrowError(FinepruneError);
    const random = createRandom(1);
    for (const bad of [
      [0, 0, 0, 0],
      [1, 2, 3],
      [1, 2, 3, 2 ** 32],
      [1, 2, 3, -1],
      [1, 2, 3, 0.5],
    ]) {
      try {
        random.setState(bad);
        expect.unreachable();
      } catch (error) {
        expect(FinepruneError.is(error) && error.code).toBe('INVALID_ARGUMENT');
      }
    }
    expect(() => random.permutation(-1)).toThrowError(/permutation/);
  });
});
