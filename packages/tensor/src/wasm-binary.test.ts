import { describe, expect, it } from 'vitest';
import {
  buildModule,
  F32,
  get,
  I32,
  instantiate,
  isSharedMemory,
  memarg,
  op,
  readUnsignedLeb,
  SHARED_MEMORY_MAXIMUM_PAGES,
  unsignedLeb,
  withSharedMemoryImport,
} from './wasm-binary';

/** `store(address, value)`: writes one float32 at a byte address of the imported memory. */
function storeModule(): Uint8Array<ArrayBuffer> {
  return buildModule([
    {
      name: 'store',
      params: [I32, F32],
      results: [],
      locals: [],
      body: [...get(0), ...get(1), op.f32Store, ...memarg()],
    },
  ]);
}

interface Store {
  store(address: number, value: number): void;
}

/** Sections of a module as [id, body bytes]. */
function sections(bytes: Uint8Array): Array<[number, number[]]> {
  const out: Array<[number, number[]]> = [];
  let cursor = 8;
  while (cursor < bytes.length) {
    const id = bytes[cursor]!;
    const [size, next] = readUnsignedLeb(bytes, cursor + 1);
    cursor = next;
    out.push([id, [...bytes.subarray(cursor, cursor + size)]]);
    cursor += size;
  }
  return out;
}

describe('buildModule and instantiate with unshared and shared memories', () => {
  it('links one built module to an ordinary memory and to a shared one (the threaded wasm heap)', () => {
    const bytes = storeModule();
    const plain = new WebAssembly.Memory({ initial: 1 });
    const shared = new WebAssembly.Memory({ initial: 1, maximum: 4, shared: true });
    expect(isSharedMemory(plain)).toBe(false);
    expect(isSharedMemory(shared)).toBe(true);
    for (const memory of [plain, shared]) {
      const module = instantiate<Store>(bytes, memory);
      expect(
        module,
        `instantiated against a ${isSharedMemory(memory) ? 'shared' : 'plain'} memory`,
      ).toBeDefined();
      module!.store(8, 1.5);
      expect(new Float32Array(memory.buffer, 8, 1)[0]).toBe(1.5);
    }
  });

  it('is needed: the unshared import does not link to a shared memory', () => {
    const shared = new WebAssembly.Memory({ initial: 1, maximum: 4, shared: true });
    expect(
      () => new WebAssembly.Instance(new WebAssembly.Module(storeModule()), { env: { memory: shared } }),
    ).toThrow(WebAssembly.LinkError);
  });

  it('rewrites only the import section: env.memory, flag 0x03 (shared, with a maximum), 1 to 65536 pages', () => {
    const bytes = storeModule();
    const rewritten = withSharedMemoryImport(bytes);
    expect(WebAssembly.validate(rewritten)).toBe(true);
    const before = sections(bytes);
    const after = sections(rewritten);
    expect(after.map(([id]) => id)).toEqual(before.map(([id]) => id));
    for (let index = 0; index < before.length; index += 1) {
      if (before[index]![0] !== 2) expect(after[index]).toEqual(before[index]);
    }
    const imports = after.find(([id]) => id === 2)![1];
    // One import; "env" "memory"; kind 2 (memory); limits flag 3; minimum 1; maximum 65536.
    const text = (value: string) => [value.length, ...new TextEncoder().encode(value)];
    expect(imports).toEqual([1, ...text('env'), ...text('memory'), 2, 3, 1, ...unsignedLeb(65536)]);
    expect(SHARED_MEMORY_MAXIMUM_PAGES).toBe(65536);
    // A module whose declared maximum is below the memory's would not link: 65536 is the largest.
    const large = new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true });
    expect(instantiate<Store>(bytes, large)).toBeDefined();
  });

  it('refuses a module without the import buildModule writes', () => {
    const bytes = storeModule();
    const noImport = new Uint8Array([...bytes.subarray(0, 8)]);
    expect(() => withSharedMemoryImport(noImport)).toThrow(/no env.memory import/);
  });
});
