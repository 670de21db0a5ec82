/**
 * One step of the xoshiro128** generator (Blackman & Vigna 2018) as WebAssembly instructions over
 * four i32 locals, shared by the passes that replay `createRandom`'s stream in the wasm heap (the
 * hard-concrete noise of fused-gates.ts and the dropout masks of fused-dropout.ts), so each draws the
 * same numbers as the JavaScript generator.
 */

import { get, i32Const, op, set } from './wasm-binary';

/**
 * Instructions that store the next output, rotl(s1·5, 7)·9, in the local `draw` and advance the state
 * locals `state` = [s0, s1, s2, s3] in place; `scratch` is an i32 local they overwrite.
 *
 * @example
 * ```ts
 * const body = [...xoshiroStep([2, 3, 4, 5], 6, 7), ...get(7)]; // leaves the draw on the stack
 * ```
 */
export function xoshiroStep(
  state: readonly [number, number, number, number],
  scratch: number,
  draw: number,
): number[] {
  const [s0, s1, s2, s3] = state;
  const xorInto = (target: number, other: number) => [
    ...get(target),
    ...get(other),
    op.i32Xor,
    ...set(target),
  ];
  return [
    // draw = rotl(s1·5, 7)·9; scratch = s1 << 9
    ...get(s1),
    ...i32Const(5),
    op.i32Mul,
    ...i32Const(7),
    op.i32Rotl,
    ...i32Const(9),
    op.i32Mul,
    ...set(draw),
    ...get(s1),
    ...i32Const(9),
    op.i32Shl,
    ...set(scratch),
    // s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 11)
    ...xorInto(s2, s0),
    ...xorInto(s3, s1),
    ...xorInto(s1, s2),
    ...xorInto(s0, s3),
    ...xorInto(s2, scratch),
    ...get(s3),
    ...i32Const(11),
    op.i32Rotl,
    ...set(s3),
  ];
}
