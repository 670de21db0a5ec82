import { createBertTokenizer, encodeTruncated } from '@fineprune/text';
import { describe, expect, it } from 'vitest';
import { loadSpamAssassin } from './corpora';

const tokenizer = createBertTokenizer();

describe('encodeTruncated on the SpamAssassin messages', () => {
  it('encodes every message body (up to 20,000 characters) as tokenizer.encode does at maxLength 128', () => {
    const messages = loadSpamAssassin();
    let truncated = 0;
    for (const message of messages) {
      const text = message.body.slice(0, 20_000);
      const expected = tokenizer.encode(text, { maxLength: 128, padToMaxLength: true });
      const result = encodeTruncated(tokenizer, text, { maxLength: 128 });
      expect(Array.from(result.encoded.ids)).toEqual(Array.from(expected.ids));
      if (result.truncated) truncated++;
    }
    // Most bodies are longer than 126 wordpieces, so the prefix path is what was compared.
    expect(truncated).toBeGreaterThan(messages.length / 2);
  });
});
