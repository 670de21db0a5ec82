import { describe, expect, it } from 'vitest';
import { EncodedExamplesBuilder, encodeTruncated } from './encode-example';
import { createBertTokenizer } from './tokenizer';

const tokenizer = createBertTokenizer();

/** A seeded mix of words, punctuation, accents, CJK, long unbroken runs, tabs and newlines. */
function randomText(seed: number, words: number): string {
  let state = seed * 2654435761;
  const next = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
  const pieces = [
    'the',
    'Movement',
    'pruning',
    'unaffable',
    'Café',
    'naïve',
    '东京',
    '!!',
    '(x)',
    '[SEP]',
    'a\u0301',
  ];
  const spaces = [' ', ' ', '  ', '\t', '\n', '\r\n', '\u00a0', '\u3000'];
  const out: string[] = [];
  for (let i = 0; i < words; i++) {
    const roll = next();
    if (roll < 0.02) out.push('x'.repeat(50 + Math.floor(next() * 300)));
    else if (roll < 0.03) out.push('abc\uD800def');
    else out.push(pieces[Math.floor(next() * pieces.length)]!);
    out.push(spaces[Math.floor(next() * spaces.length)]!);
  }
  return out.join('');
}

describe('encodeTruncated', () => {
  it('equals tokenizer.encode with maxLength and padding, on 120 generated texts and pairs of all lengths', () => {
    for (let seed = 1; seed <= 120; seed++) {
      const text = randomText(seed, seed * 7);
      const pair = seed % 3 === 0 ? randomText(seed + 1000, (seed * 5) % 200) : undefined;
      for (const maxLength of [4, 16, 64]) {
        const expected = tokenizer.encode(text, {
          ...(pair !== undefined ? { pair } : {}),
          maxLength,
          padToMaxLength: true,
        });
        const whole = tokenizer.encode(text, pair !== undefined ? { pair } : {});
        const { encoded, truncated } = encodeTruncated(tokenizer, text, {
          maxLength,
          ...(pair !== undefined ? { pair } : {}),
        });
        expect(Array.from(encoded.ids)).toEqual(Array.from(expected.ids));
        expect(Array.from(encoded.tokenTypeIds)).toEqual(Array.from(expected.tokenTypeIds));
        expect(Array.from(encoded.attentionMask)).toEqual(Array.from(expected.attentionMask));
        expect(truncated).toBe(whole.ids.length > maxLength);
      }
    }
  });

  it('encodes the start of a 22 MB text as the start of a short one (only a prefix is tokenized)', () => {
    const text = 'pruning moves weights '.repeat(1_000_000);
    const { encoded, truncated } = encodeTruncated(tokenizer, text, { maxLength: 8 });
    expect(truncated).toBe(true);
    const short = tokenizer.encode('pruning moves weights '.repeat(3), {
      maxLength: 8,
      padToMaxLength: true,
    });
    expect(Array.from(encoded.ids)).toEqual(Array.from(short.ids));
  });
});

describe('EncodedExamplesBuilder', () => {
  it('grows past its capacity and returns trimmed arrays, labels and the truncation count', () => {
    const builder = new EncodedExamplesBuilder(6, 1);
    const texts = ['a', 'b c', 'one two three four five six'];
    texts.forEach((text, label) => {
      builder.add(encodeTruncated(tokenizer, text, { maxLength: 6 }), label);
    });
    builder.relabel(0, 2);
    const built = builder.build();
    expect(built.inputIds.length).toBe(18);
    expect(Array.from(built.labels)).toEqual([2, 1, 2]);
    expect(built.truncated).toBe(1);
    expect(Array.from(built.inputIds.subarray(6, 12))).toEqual(
      Array.from(tokenizer.encode('b c', { maxLength: 6, padToMaxLength: true }).ids),
    );
    expect(() => builder.add(encodeTruncated(tokenizer, 'x', { maxLength: 5 }), 0)).toThrow(
      /length 5 was added to examples of length 6/,
    );
  });
});
