/**
 * A minimal WebAssembly binary writer: just enough to build fineprune's small SIMD helpers (the
 * fused Adam step, the selection scans, and @fineprune/sparse's kernels) at run time from
 * instructions written in TypeScript, so no package ships an opaque binary. Every module it builds
 * imports one memory as `env.memory` and exports functions. Opcodes follow the WebAssembly 2.0 core,
 * fixed-width SIMD and bulk-memory specifications. Public, side-effect-free subpath:
 * `@fineprune/tensor/wasm-binary`.
 */

export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;

/** Unsigned LEB128. */
export function unsignedLeb(value: number): number[] {
  const bytes: number[] = [];
  let rest = value >>> 0;
  do {
    let byte = rest & 0x7f;
    rest >>>= 7;
    if (rest !== 0) byte |= 0x80;
    bytes.push(byte);
  } while (rest !== 0);
  return bytes;
}

/** Signed LEB128 (for i32.const). */
export function signedLeb(value: number): number[] {
  const bytes: number[] = [];
  let rest = value | 0;
  for (;;) {
    const byte = rest & 0x7f;
    rest >>= 7;
    const done = (rest === 0 && (byte & 0x40) === 0) || (rest === -1 && (byte & 0x40) !== 0);
    bytes.push(done ? byte : byte | 0x80);
    if (done) return bytes;
  }
}

function section(id: number, body: number[]): number[] {
  return [id, ...unsignedLeb(body.length), ...body];
}

function vector(items: number[][]): number[] {
  return [...unsignedLeb(items.length), ...items.flat()];
}

function name(text: string): number[] {
  const bytes = [...new TextEncoder().encode(text)];
  return [...unsignedLeb(bytes.length), ...bytes];
}

/** Core opcodes used here. */
export const op = {
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  br: 0x0c,
  brIf: 0x0d,
  end: 0x0b,
  select: 0x1b,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Load: 0x28,
  f32Load: 0x2a,
  i32Store: 0x36,
  f32Store: 0x38,
  i32Const: 0x41,
  f32Const: 0x43,
  i32LtU: 0x49,
  i32GtU: 0x4b,
  i32GeU: 0x4f,
  f32Lt: 0x5d,
  f32Gt: 0x5e,
  f32Le: 0x5f,
  f32Ge: 0x60,
  i32Add: 0x6a,
  i32Sub: 0x6b,
  i32Mul: 0x6c,
  i32And: 0x71,
  i32Xor: 0x73,
  i32Shl: 0x74,
  i32ShrU: 0x76,
  i32Rotl: 0x77,
  i32DivU: 0x6e,
  f32Sqrt: 0x91,
  f32Add: 0x92,
  f32Sub: 0x93,
  f32Mul: 0x94,
  f32Div: 0x95,
  f32Min: 0x96,
  f32Max: 0x97,
  f32ConvertI32S: 0xb2,
} as const;

/** Fixed-width SIMD opcodes used here (each is emitted as 0xfd followed by its LEB128 code). */
export const simdOp = {
  v128Load: 0x00,
  v128Load32Splat: 0x09,
  v128Store: 0x0b,
  i32x4Splat: 0x11,
  f32x4Splat: 0x13,
  i32x4ExtractLane: 0x1b,
  f32x4ExtractLane: 0x1f,
  f32x4Lt: 0x43,
  f32x4Gt: 0x44,
  f32x4Le: 0x45,
  f32x4Ge: 0x46,
  v128And: 0x4e,
  v128Or: 0x50,
  v128Bitselect: 0x52,
  v128AnyTrue: 0x53,
  v128Load32Lane: 0x56,
  v128Load32Zero: 0x5c,
  f32x4Nearest: 0x6a,
  i32x4Shl: 0xab,
  i32x4Add: 0xae,
  i32x4Sub: 0xb1,
  f32x4Abs: 0xe0,
  f32x4Neg: 0xe1,
  f32x4Sqrt: 0xe3,
  f32x4Add: 0xe4,
  f32x4Sub: 0xe5,
  f32x4Mul: 0xe6,
  f32x4Div: 0xe7,
  f32x4Min: 0xe8,
  f32x4Max: 0xe9,
  f32x4Pmin: 0xea,
  f32x4Pmax: 0xeb,
  i32x4TruncSatF32x4S: 0xf8,
} as const;

/** Bulk-memory instructions (each is emitted as 0xfc followed by its LEB128 code and memory indices). */
export const bulkOp = {
  memoryCopy: 0x0a,
  memoryFill: 0x0b,
} as const;

/** `memory.copy` (destination, source, byte count on the stack) within the one imported memory. */
export function memoryCopy(): number[] {
  return [0xfc, ...unsignedLeb(bulkOp.memoryCopy), 0x00, 0x00];
}

/** `memory.fill` (destination, byte value, byte count on the stack) in the one imported memory. */
export function memoryFill(): number[] {
  return [0xfc, ...unsignedLeb(bulkOp.memoryFill), 0x00];
}

/** One SIMD instruction. */
export function simd(code: number): number[] {
  return [0xfd, ...unsignedLeb(code)];
}

/** A memory access immediate: alignment 4 bytes (2^2), the given constant offset. */
export function memarg(offset = 0): number[] {
  return [2, ...unsignedLeb(offset)];
}

/** `f32.const value` (little-endian IEEE-754 single). */
export function f32Const(value: number): number[] {
  const bytes = new Uint8Array(new Float32Array([value]).buffer);
  return [op.f32Const, ...bytes];
}

/** `i32.const value`. */
export function i32Const(value: number): number[] {
  return [op.i32Const, ...signedLeb(value)];
}

/** `local.get index`. */
export function get(local: number): number[] {
  return [op.localGet, ...unsignedLeb(local)];
}

/** `local.set index`. */
export function set(local: number): number[] {
  return [op.localSet, ...unsignedLeb(local)];
}

/** The byte address `base + cursor` (two i32 locals) on the stack. */
export function address(base: number, cursor: number): number[] {
  return [...get(base), ...get(cursor), op.i32Add];
}

/** `local += by` for an i32 local. */
export function increment(local: number, by: number): number[] {
  return [...get(local), ...i32Const(by), op.i32Add, ...set(local)];
}

/** `while (a < b) { body }` over two i32 locals (unsigned): a block around a loop that exits when a ≥ b. */
export function whileBelow(a: number, b: number, body: number[]): number[] {
  return [
    op.block,
    0x40,
    op.loop,
    0x40,
    ...get(a),
    ...get(b),
    op.i32GeU,
    op.brIf,
    1,
    ...body,
    op.br,
    0,
    op.end,
    op.end,
  ];
}

/**
 * `while (local < limit) { body; local += stride }` over an i32 local: a block around a loop that
 * exits when `local ≥ limit` (unsigned).
 */
export function loopWhileBelow(local: number, limit: number, stride: number, body: number[]): number[] {
  return whileBelow(local, limit, [...body, ...increment(local, stride)]);
}

/**
 * The bounds of a loop over n float32 elements, in bytes: `end` = 4n and `simdEnd` = 4(n − n mod 4),
 * the end of the part processed four lanes at a time (the rest is the scalar tail).
 */
export function byteBounds(n: number, end: number, simdEnd: number): number[] {
  return [
    ...get(n),
    ...i32Const(2),
    op.i32Shl,
    ...set(end),
    ...get(n),
    ...get(n),
    ...i32Const(3),
    op.i32And,
    op.i32Sub,
    ...i32Const(2),
    op.i32Shl,
    ...set(simdEnd),
  ];
}

/** The memory import {@link buildModule} writes: `env.memory`, unshared, at least one page, no maximum. */
const UNSHARED_MEMORY_IMPORT = [...name('env'), ...name('memory'), 0x02, 0x00, 0x01];

/** One exported function of a module. */
export interface FunctionSpec {
  name: string;
  params: number[];
  results: number[];
  /** Extra locals after the parameters, by type, in order. */
  locals: number[];
  /** The instructions, without the final `end`. */
  body: number[];
}

/**
 * A module that imports its memory as `env.memory` (unshared, at least one page) and exports
 * `functions`. {@link instantiate} declares the import shared when the memory it links to is.
 */
export function buildModule(functions: readonly FunctionSpec[]): Uint8Array<ArrayBuffer> {
  const types = functions.map((fn) => [
    0x60,
    ...vector(fn.params.map((type) => [type])),
    ...vector(fn.results.map((type) => [type])),
  ]);
  const codes = functions.map((fn) => {
    // Run-length groups of equal local types.
    const groups: number[][] = [];
    for (const type of fn.locals) {
      const last = groups[groups.length - 1];
      if (last && last[1] === type) last[0]! += 1;
      else groups.push([1, type]);
    }
    const body = [
      ...vector(groups.map(([count, type]) => [...unsignedLeb(count!), type!])),
      ...fn.body,
      op.end,
    ];
    return [...unsignedLeb(body.length), ...body];
  });
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vector(types)),
    ...section(2, vector([UNSHARED_MEMORY_IMPORT])),
    ...section(3, vector(functions.map((_, index) => unsignedLeb(index)))),
    ...section(7, vector(functions.map((fn, index) => [...name(fn.name), 0x00, ...unsignedLeb(index)]))),
    ...section(10, vector(codes)),
  ]);
}

/**
 * Pages (64 KiB) a shared memory import declares as its maximum: the whole 32-bit address space,
 * so that it links against any shared memory (an import's maximum must be at least the memory's).
 */
export const SHARED_MEMORY_MAXIMUM_PAGES = 65536;

/** Whether `memory` is a shared memory (the multi-threaded wasm backend's heap is one). */
export function isSharedMemory(memory: WebAssembly.Memory): boolean {
  return typeof SharedArrayBuffer === 'function' && memory.buffer instanceof SharedArrayBuffer;
}

/** Reads the unsigned LEB128 at `at`: its value and the index after it. */
export function readUnsignedLeb(bytes: Uint8Array, at: number): [number, number] {
  let value = 0;
  let shift = 0;
  let next = at;
  for (;;) {
    const byte = bytes[next]!;
    next += 1;
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if ((byte & 0x80) === 0) return [value, next];
  }
}

/**
 * The module `bytes` (as {@link buildModule} writes it) with its memory import declared shared
 * (limits flag 0x03: at least one page, at most {@link SHARED_MEMORY_MAXIMUM_PAGES}), which a
 * shared memory needs to link. Only the import section changes; the code is the same.
 */
export function withSharedMemoryImport(bytes: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const shared = [
    ...name('env'),
    ...name('memory'),
    0x02,
    0x03,
    0x01,
    ...unsignedLeb(SHARED_MEMORY_MAXIMUM_PAGES),
  ];
  const out: number[] = [...bytes.subarray(0, 8)];
  let cursor = 8;
  const expected = vector([UNSHARED_MEMORY_IMPORT]);
  let replaced = false;
  while (cursor < bytes.length) {
    const id = bytes[cursor]!;
    const [size, next] = readUnsignedLeb(bytes, cursor + 1);
    const body = [...bytes.subarray(next, next + size)];
    if (
      id === 2 &&
      body.length === expected.length &&
      body.every((byte, index) => byte === expected[index])
    ) {
      out.push(...section(2, vector([shared])));
      replaced = true;
    } else {
      out.push(...bytes.subarray(cursor, next + size));
    }
    cursor = next + size;
  }
  if (!replaced)
    throw new Error('withSharedMemoryImport: the module has no env.memory import of buildModule');
  return new Uint8Array(out);
}

/**
 * Instantiates `bytes` against `memory`; `undefined` when this runtime lacks what the module uses
 * (WebAssembly SIMD) or refuses it. When `memory` is shared (the multi-threaded wasm backend), the
 * module's memory import is declared shared first ({@link withSharedMemoryImport}), so the same
 * {@link buildModule} output links against either kind of memory.
 */
export function instantiate<T>(bytes: Uint8Array<ArrayBuffer>, memory: WebAssembly.Memory): T | undefined {
  try {
    const linked = isSharedMemory(memory) ? withSharedMemoryImport(bytes) : bytes;
    if (typeof WebAssembly !== 'object' || !WebAssembly.validate(linked)) return undefined;
    return new WebAssembly.Instance(new WebAssembly.Module(linked), { env: { memory } }).exports as T;
  } catch {
    return undefined;
  }
}
