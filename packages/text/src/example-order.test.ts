import { setBackend, withLeakGuard } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { disposeBatch, encodeExamples } from './encode';
import { encodeBatch, ExampleOrder } from './example-order';
import { StreamDomain, streamRandom } from './streams';
import { createBertTokenizer } from './tokenizer';

const tokenizer = createBertTokenizer();
const examples = Array.from({ length: 13 }, (_, i) => ({
  text: `example number ${i} ${'word '.repeat(i)}`,
  label: i % 2,
  source: `row${i}`,
}));

describe('ExampleOrder and encodeBatch', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it('visits the examples of TextBatchSource in the same order, each once per epoch', () => {
    const source = encodeExamples(tokenizer, examples, { maxLength: 8, batchSize: 4, seed: 5 });
    const order = new ExampleOrder(examples.length, { batchSize: 4, seed: 5 });
    expect(order.batchesPerEpoch).toBe(3);
    for (let step = 0; step < 9; step++) {
      // Step s: epoch e = floor(s / 3) takes slice s mod 3 of the exampleOrder stream's permutation.
      const epoch = Math.floor(step / 3);
      const start = (step % 3) * 4;
      const expected = streamRandom(5, StreamDomain.exampleOrder, epoch)
        .permutation(13)
        .slice(start, start + 4);
      expect(Array.from(order.indices(step))).toEqual(Array.from(expected));
      expect(Array.from(source.indices(step))).toEqual(Array.from(expected));
    }
    // 13 examples in batches of 4, the remainder dropped: 12 distinct examples per epoch.
    const epoch = [0, 1, 2].flatMap((step) => Array.from(order.indices(step)));
    expect(new Set(epoch).size).toBe(12);
    const other = new ExampleOrder(examples.length, { batchSize: 4, seed: 6 });
    expect(Array.from(other.permutation(0))).not.toEqual(Array.from(order.permutation(0)));
  });

  it('encodes a batch as TextBatchSource serves the same examples (values equal, no tensor left)', async () => {
    const source = encodeExamples(tokenizer, examples, { maxLength: 8, batchSize: 4, seed: 2 });
    await withLeakGuard(async () => {
      const indices = source.indices(1);
      const served = source.batch(1);
      const encoded = encodeBatch(
        tokenizer,
        Array.from(indices, (index) => examples[index]!),
        8,
      );
      expect(encoded.x.inputIds.shape).toEqual([4, 8]);
      expect(await encoded.x.inputIds.array()).toEqual(await served.x.inputIds.array());
      expect(await encoded.x.tokenTypeIds.array()).toEqual(await served.x.tokenTypeIds.array());
      expect(await encoded.x.attentionMask.array()).toEqual(await served.x.attentionMask.array());
      expect(Array.from(await encoded.y.data())).toEqual(Array.from(await served.y.data()));
      disposeBatch(served);
      disposeBatch(encoded);
    });
  });
});
