import { describe, expect, it } from 'vitest';
import { checkJsonBounds, quoteText } from './json-bounds';

const loose = { maxDepth: 100, maxValues: 1_000_000 };

describe('checkJsonBounds', () => {
  it('accepts text within every bound', () => {
    expect(checkJsonBounds('{"a":[1,2,{"b":"x"}],"c":null}', loose)).toBeUndefined();
    expect(checkJsonBounds('[]', { maxDepth: 1, maxValues: 0 })).toBeUndefined();
    expect(checkJsonBounds('42', { maxDepth: 0, maxValues: 0 })).toBeUndefined();
  });

  it('counts depth from the root container and stops at the first level too deep', () => {
    // [[[1]]] nests 3 levels: the third "[" is at offset 2.
    expect(checkJsonBounds('[[[1]]]', { maxDepth: 3, maxValues: 10 })).toBeUndefined();
    expect(checkJsonBounds('[[[1]]]', { maxDepth: 2, maxValues: 10 })).toEqual({
      bound: 'depth',
      limit: 2,
      offset: 2,
      description: 'nests deeper than 2 levels',
    });
    // Brackets inside strings (with escaped quotes) do not nest.
    expect(checkJsonBounds('["[[[\\"[[[", {"k]}": "{{{"}]', { maxDepth: 2, maxValues: 10 })).toBeUndefined();
  });

  it('stops a 10-million-deep text at the limit after reading only the first levels', () => {
    const text = '['.repeat(10_000_000);
    expect(checkJsonBounds(text, { maxDepth: 64, maxValues: 1000 })?.offset).toBe(64);
    // Each nested bracket is also a member of its parent: 10 values end the scan sooner.
    expect(checkJsonBounds(text, { maxDepth: 64, maxValues: 10 })).toMatchObject({
      bound: 'values',
      offset: 11,
    });
  });

  it('counts every member of every container once', () => {
    // Members: root object 2 ("a", "c"), the array 3, the inner object 1: 6 values.
    const text = '{"a":[1,2,{"b":"x,y"}],"c":null}';
    expect(checkJsonBounds(text, { maxDepth: 3, maxValues: 6 })).toBeUndefined();
    expect(checkJsonBounds(text, { maxDepth: 3, maxValues: 5 })?.bound).toBe('values');
    expect(checkJsonBounds(text, { maxDepth: 3, maxValues: 6, maxRootMembers: 1 })).toMatchObject({
      bound: 'rootMembers',
      description: 'has more than 1 top-level entries',
    });
    expect(checkJsonBounds(text, { maxDepth: 3, maxValues: 6, maxNestedMembers: 2 })).toMatchObject({
      bound: 'nestedMembers',
      description: 'has an object or array (at depth 2) with more than 2 entries',
    });
    expect(checkJsonBounds(text, { maxDepth: 3, maxValues: 6, maxNestedMembers: 3 })).toBeUndefined();
    expect(checkJsonBounds('[ ]', { maxDepth: 1, maxValues: 0 })).toBeUndefined();
    expect(checkJsonBounds('[ 0 ]', { maxDepth: 1, maxValues: 0 })?.bound).toBe('values');
  });
});

describe('quoteText', () => {
  it('quotes short text whole and cuts long text to 120 characters with its length', () => {
    expect(quoteText('fc1/kernel')).toBe('"fc1/kernel"');
    expect(quoteText('a"b')).toBe('"a\\"b"');
    const long = quoteText('x'.repeat(1_000_000));
    expect(long).toBe(`"${'x'.repeat(120)}"… (1000000 characters)`);
    expect(quoteText(42)).toBe('"42"');
  });
});
