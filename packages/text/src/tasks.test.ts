import { describe, expect, it } from 'vitest';
import { chunkText } from './tasks';
import { createBertTokenizer } from './tokenizer';

const tokenizer = createBertTokenizer();

describe('chunkText', () => {
  it('cuts at whitespace into chunks of at most budget wordpieces', () => {
    // hello , | world ! | una ##ffa ##ble: pieces 2, 2, 3; with budget 3 no two words fit together.
    expect(chunkText(tokenizer, 'hello, world! unaffable', 3)).toEqual({
      chunks: ['hello,', 'world!', 'unaffable'],
      wordpieces: 7,
      overlong: 0,
    });
    expect(chunkText(tokenizer, '  hello,\n world!  ', 4).chunks).toEqual(['hello,\n world!']);
  });

  it('splits an over-long word at punctuation and reports an unbreakable one', () => {
    // a , b , c , d: seven one-piece units → a,b | ,c, | d.
    expect(chunkText(tokenizer, 'a,b,c,d', 3).chunks).toEqual(['a,b', ',c,', 'd']);
    expect(chunkText(tokenizer, 'unaffable', 2)).toEqual({
      chunks: ['unaffable'],
      wordpieces: 3,
      overlong: 1,
    });
    expect(chunkText(tokenizer, '', 5)).toEqual({ chunks: [], wordpieces: 0, overlong: 0 });
  });
});
