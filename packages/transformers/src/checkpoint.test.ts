import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { errorOf } from '@fineprune/core/testing';
import { encodeSafetensors, readSafetensors, type SafetensorsInput } from '@fineprune/safetensors';
import { type FinepruneError, setBackend, withLeakGuard } from '@fineprune/tensor';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  exportHuggingFace,
  huggingFaceNames,
  huggingFaceTensors,
  loadHuggingFaceTensors,
  loadHuggingFaceWeights,
  taskFromHuggingFace,
} from './checkpoint';
import { bertBaseUncasedConfig, configFromHuggingFace, type EncoderConfig } from './config';
import type { BertTask } from './layout';
import { type BertModel, createBertModel } from './model';
import { loadHuggingFaceDirectory, saveHuggingFaceDirectory } from './node';

const tiny: EncoderConfig = {
  ...bertBaseUncasedConfig,
  vocabSize: 13,
  hiddenSize: 4,
  numLayers: 2,
  numHeads: 2,
  intermediateSize: 8,
  maxPositions: 8,
  initializerRange: 0.4,
};
const tasks: BertTask[] = [
  { type: 'classification', numLabels: 3 },
  { type: 'span' },
  { type: 'mlm', maxPredictions: 2 },
];

function inputs() {
  return {
    inputIds: tf.tensor2d(
      [
        [2, 5, 7, 12, 0],
        [3, 1, 4, 0, 0],
      ],
      undefined,
      'int32',
    ),
    tokenTypeIds: tf.tensor2d(
      [
        [0, 0, 1, 1, 0],
        [0, 1, 1, 0, 0],
      ],
      undefined,
      'int32',
    ),
    attentionMask: tf.tensor2d(
      [
        [1, 1, 1, 1, 0],
        [1, 1, 1, 0, 0],
      ],
      undefined,
      'int32',
    ),
  };
}

/** The model's outputs on a fixed batch, as numbers (the MLM head at fixed positions). */
function outputsOf(model: BertModel): number[] {
  return tf.tidy(() => {
    const x = inputs();
    const out = model.forward(x, { training: false });
    if (model.task.type === 'mlm') {
      return Array.from(
        model
          .mlmLogits(
            out as tf.Tensor,
            tf.tensor2d(
              [
                [1, 2],
                [0, 2],
              ],
              undefined,
              'int32',
            ),
          )
          .dataSync(),
      );
    }
    return [out].flat().flatMap((t) => Array.from(t.dataSync()));
  });
}

/** Prunes a few entries of every projection (mask 0), so the export has something to zero. */
function pruneSome(model: BertModel): void {
  tf.tidy(() => {
    for (const parameter of model.parameters()) {
      const values = Array.from({ length: parameter.size }, (_, index) => (index % 3 === 0 ? 0 : 1));
      parameter.mask.assign(tf.tensor(values, [...parameter.shape]));
    }
  });
}

/** A Hugging Face-layout file for `config`/`task`, zeros except for `set`, with optional renames. */
function handBuiltFile(
  config: EncoderConfig,
  task: BertTask,
  options: {
    set?: Record<string, (values: Float32Array) => void>;
    rename?: (name: string) => string;
    extra?: Record<string, SafetensorsInput>;
    drop?: string[];
  } = {},
) {
  const tensors: Record<string, SafetensorsInput> = {};
  for (const entry of huggingFaceNames(config, task)) {
    if (options.drop?.includes(entry.huggingFaceName)) continue;
    const size = entry.huggingFaceShape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size).fill(entry.init === 'ones' ? 1 : 0.01);
    options.set?.[entry.huggingFaceName]?.(data);
    tensors[options.rename ? options.rename(entry.huggingFaceName) : entry.huggingFaceName] = {
      dtype: 'F32',
      shape: entry.huggingFaceShape,
      data,
    };
  }
  return readSafetensors(encodeSafetensors({ ...tensors, ...options.extra }, { format: 'pt' }));
}

describe('the Hugging Face layout', () => {
  it('lists bert-base-uncased’s names and [out, in] shapes', () => {
    const entries = huggingFaceNames(bertBaseUncasedConfig, { type: 'classification', numLabels: 2 });
    expect(entries.length).toBe(5 + 12 * 16 + 4); // embeddings, 16 tensors per layer, pooler + classifier
    const byName = new Map(entries.map((entry) => [entry.huggingFaceName, entry]));
    expect(byName.get('bert.embeddings.word_embeddings.weight')!.huggingFaceShape).toEqual([30522, 768]);
    expect(byName.get('bert.encoder.layer.11.intermediate.dense.weight')!.huggingFaceShape).toEqual([
      3072, 768,
    ]);
    expect(byName.get('bert.encoder.layer.11.intermediate.dense.weight')!.shape).toEqual([768, 3072]);
    expect(byName.get('bert.encoder.layer.3.output.dense.weight')!.name).toBe('layer_3/ffn/output/kernel');
    expect(byName.get('bert.encoder.layer.3.attention.output.LayerNorm.bias')!.name).toBe(
      'layer_3/attention/layer_norm/beta',
    );
    expect(byName.get('classifier.weight')!.huggingFaceShape).toEqual([2, 768]);
    expect(byName.get('bert.pooler.dense.bias')!.part).toBe('pooler');
    const span = huggingFaceNames(bertBaseUncasedConfig, { type: 'span' }).map(
      (entry) => entry.huggingFaceName,
    );
    expect(span).toContain('qa_outputs.weight');
    expect(span).not.toContain('bert.pooler.dense.weight');
    const mlm = huggingFaceNames(bertBaseUncasedConfig, { type: 'mlm', maxPredictions: 20 });
    expect(mlm.slice(-5).map((entry) => entry.huggingFaceName)).toEqual([
      'cls.predictions.transform.dense.weight',
      'cls.predictions.transform.dense.bias',
      'cls.predictions.transform.LayerNorm.weight',
      'cls.predictions.transform.LayerNorm.bias',
      'cls.predictions.bias',
    ]);
  });

  it('reads the task from config.json', () => {
    expect(
      taskFromHuggingFace({
        architectures: ['BertForSequenceClassification'],
        id2label: { 0: 'a', 1: 'b', 2: 'c' },
      }),
    ).toEqual({ type: 'classification', numLabels: 3 });
    expect(taskFromHuggingFace({ architectures: ['BertForQuestionAnswering'] })).toEqual({ type: 'span' });
    expect(taskFromHuggingFace({ architectures: ['BertForMaskedLM'] }, 7)).toEqual({
      type: 'mlm',
      maxPredictions: 7,
    });
    expect(taskFromHuggingFace({ architectures: ['BertModel'] })).toBeUndefined();
  });
});

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`Hugging Face import and export on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('round-trips every task through safetensors bytes with identical outputs', async () => {
      for (const task of tasks) {
        const source = createBertModel({ config: tiny, task, seed: 1 });
        pruneSome(source);
        const target = createBertModel({ config: tiny, task, seed: 2 });
        await withLeakGuard(async () => {
          const { safetensors, config } = await exportHuggingFace(source, { includeMasks: true });
          const file = readSafetensors(safetensors);
          expect(configFromHuggingFace(config)).toEqual(tiny);
          expect(taskFromHuggingFace(config, 2)).toEqual(task);
          expect(file.metadata.format).toBe('pt');
          const report = loadHuggingFaceWeights(target, file);
          expect(report.missing).toEqual([]);
          expect(report.unexpected).toEqual([]);
          expect(report.masks.length).toBe(12);
          // Same float32 values reach the same ops: the outputs agree exactly.
          expect(outputsOf(target)).toEqual(outputsOf(source));
          target.parameters().forEach((parameter, index) => {
            expect(Array.from(parameter.mask.dataSync())).toEqual(
              Array.from(source.parameters()[index]!.mask.dataSync()),
            );
          });
          // Pruned weights are exported as zeros ([out, in]: entry [o][i] is our [i][o]).
          const query = file.tensors.get('bert.encoder.layer.0.attention.self.query.weight')!;
          const values = new Float32Array(query.bytes().slice().buffer);
          expect(values[0]).toBe(0); // our [0][0], flat index 0 % 3 = 0 → pruned
          expect(file.tensors.get('bert.encoder.layer.0.attention.self.query.weight_mask')!.dtype).toBe('U8');
        });
        source.dispose();
        target.dispose();
      }
    });

    it('gives the tensors as plain [out, in] arrays with masks, and loads them back with identical outputs', async () => {
      const source = createBertModel({ config: tiny, task: tasks[0]!, seed: 1 });
      // Every seventh entry pruned: on a 4 × 4 weight, unlike every third or fifth, this pattern is
      // not symmetric under transposition (our [1][3] is pruned, [3][1] is not).
      tf.tidy(() => {
        for (const parameter of source.parameters()) {
          const values = Array.from({ length: parameter.size }, (_, index) => (index % 7 === 0 ? 0 : 1));
          parameter.mask.assign(tf.tensor(values, [...parameter.shape]));
        }
      });
      const target = createBertModel({ config: tiny, task: tasks[0]!, seed: 2 });
      await withLeakGuard(async () => {
        const tensors = await huggingFaceTensors(source, { includeMasks: true });
        expect(tensors.map((tensor) => tensor.name)).toEqual(
          huggingFaceNames(tiny, tasks[0]!).map((entry) => entry.huggingFaceName),
        );
        expect(tensors.filter((tensor) => tensor.prunable)).toHaveLength(12);
        const query = tensors.find(
          (tensor) => tensor.name === 'bert.encoder.layer.0.attention.self.query.weight',
        )!;
        const ours = source
          .parameters()
          .find((parameter) => parameter.name === 'layer_0/attention/query/kernel')!;
        const [weights, mask] = [ours.weight.dataSync(), ours.mask.dataSync()];
        // Entry [o][i] of the [out, in] arrays is our [i][o]; pruned weights are zeros.
        for (const [o, i] of [
          [0, 0],
          [3, 1],
          [1, 3],
          [2, 3],
        ] as const) {
          expect(query.mask![o * 4 + i]).toBe(mask[i * 4 + o]);
          expect(query.values[o * 4 + i]).toBe(weights[i * 4 + o]! * mask[i * 4 + o]!);
        }
        expect(query.values[0]).toBe(0);
        loadHuggingFaceTensors(target, tensors);
        expect(outputsOf(target)).toEqual(outputsOf(source));
      });
      source.dispose();
      target.dispose();
    });

    it('exports F16 weights that reload within half-precision rounding', async () => {
      const source = createBertModel({ config: tiny, task: { type: 'span' }, seed: 3 });
      const target = createBertModel({ config: tiny, task: { type: 'span' }, seed: 4 });
      const { safetensors } = await exportHuggingFace(source, { dtype: 'F16' });
      const file = readSafetensors(safetensors);
      expect(file.tensors.get('qa_outputs.weight')!.dtype).toBe('F16');
      loadHuggingFaceWeights(target, file);
      const a = outputsOf(source);
      const b = outputsOf(target);
      // F16 keeps 11 significant bits (relative error ≤ 2^-11 per weight); through two layers the
      // logits (of order 1) move by well under 2e-2.
      for (let index = 0; index < a.length; index += 1)
        expect(Math.abs(a[index]! - b[index]!)).toBeLessThan(2e-2);
      await expect(exportHuggingFace(source, { dtype: 'BF16' as never })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      source.dispose();
      target.dispose();
    }, 60_000);

    it('imports a hand-built [out, in] file, without the bert. prefix and with gamma/beta', () => {
      const file = handBuiltFile(
        tiny,
        { type: 'span' },
        {
          set: {
            // query.weight[out = 1][in = 3] = 42 must land at our kernel[in = 3][out = 1].
            'bert.encoder.layer.0.attention.self.query.weight': (values) => {
              values[1 * 4 + 3] = 42;
            },
            // intermediate.dense.weight is [8, 4]: [out = 6][in = 2] = −7 → our [2][6].
            'bert.encoder.layer.1.intermediate.dense.weight': (values) => {
              values[6 * 4 + 2] = -7;
            },
            'bert.embeddings.word_embeddings.weight': (values) => {
              values[5 * 4 + 1] = 3.5; // embeddings are [vocab, hidden] in both layouts
            },
          },
          rename: (name) =>
            name
              .replace(/^bert\./, '')
              .replace(/LayerNorm\.weight$/, 'LayerNorm.gamma')
              .replace(/LayerNorm\.bias$/, 'LayerNorm.beta'),
          extra: {
            'embeddings.position_ids': { dtype: 'I64', shape: [1, 8], data: [0, 1, 2, 3, 4, 5, 6, 7] },
          },
        },
      );
      const model = createBertModel({ config: tiny, task: { type: 'span' }, seed: 9 });
      const report = loadHuggingFaceWeights(model, file);
      expect(report.unexpected).toEqual([]);
      expect(report.loaded.length).toBe(model.variables().length);
      const variable = (name: string) => model.variables().find((entry) => entry.name === name)!.variable;
      const query = variable('layer_0/attention/query/kernel').arraySync() as number[][];
      expect(query[3]![1]).toBe(42);
      expect(query[1]![3]).toBeCloseTo(0.01, 7);
      expect((variable('layer_1/ffn/intermediate/kernel').arraySync() as number[][])[2]![6]).toBe(-7);
      expect((variable('embeddings/word_embeddings').arraySync() as number[][])[5]![1]).toBe(3.5);
      expect(Array.from(variable('layer_1/ffn/layer_norm/gamma').dataSync())).toEqual([1, 1, 1, 1]);
      // Masks are reset to ones when the file has none.
      expect(model.parameters().every((parameter) => parameter.mask.dataSync().every((v) => v === 1))).toBe(
        true,
      );
      model.dispose();
    });

    it('refuses missing, unexpected and wrong-shaped tensors with CHECKPOINT_MISMATCH', () => {
      const task: BertTask = { type: 'classification', numLabels: 3 };
      const model = createBertModel({ config: tiny, task, seed: 9 });
      const before = Array.from(model.variables()[5]!.variable.dataSync());
      const missing = errorOf(() =>
        loadHuggingFaceWeights(
          model,
          handBuiltFile(tiny, task, { drop: ['bert.encoder.layer.1.output.dense.bias'] }),
        ),
      );
      expect(missing.code).toBe('CHECKPOINT_MISMATCH');
      expect(missing.message).toMatch(/missing bert\.encoder\.layer\.1\.output\.dense\.bias/);
      const extra = errorOf(() =>
        loadHuggingFaceWeights(
          model,
          handBuiltFile(tiny, task, {
            extra: { 'cls.seq_relationship.bias': { dtype: 'F32', shape: [2], data: [0, 0] } },
          }),
        ),
      );
      expect(extra.message).toMatch(/unexpected "cls\.seq_relationship\.bias"/);
      const wrong = errorOf(() =>
        loadHuggingFaceWeights(model, handBuiltFile({ ...tiny, intermediateSize: 6 }, task)),
      );
      expect(wrong.message).toMatch(
        /mismatched "bert\.encoder\.layer\.0\.intermediate\.dense\.weight": F32 \[6,4\] in the file, F32 \[8,4\] expected/,
      );
      expect(wrong.details?.mismatched).toHaveLength(6); // 2 layers × (intermediate weight, bias, output weight)
      // A failed load changes nothing.
      expect(Array.from(model.variables()[5]!.variable.dataSync())).toEqual(before);
      // Many missing names: the first 10 and a count.
      const empty = readSafetensors(
        encodeSafetensors({ unrelated: { dtype: 'F32', shape: [1], data: [0] } }),
      );
      const many = errorOf(() => loadHuggingFaceWeights(model, empty));
      expect(many.message).toMatch(new RegExp(`and ${model.variables().length - 10} more`));
      model.dispose();
    });

    it('loads an MLM checkpoint into a classifier in non-strict mode (the transfer case)', async () => {
      const mlm = createBertModel({ config: tiny, task: { type: 'mlm', maxPredictions: 2 }, seed: 5 });
      const { safetensors } = await exportHuggingFace(mlm);
      const file = readSafetensors(safetensors);
      const classifier = createBertModel({
        config: tiny,
        task: { type: 'classification', numLabels: 2 },
        seed: 6,
      });
      expect(errorOf(() => loadHuggingFaceWeights(classifier, file)).message).toMatch(/strict: false/);
      const pooler = Array.from(
        classifier
          .variables()
          .find((entry) => entry.name === 'pooler/kernel')!
          .variable.dataSync(),
      );
      const report = loadHuggingFaceWeights(classifier, file, { strict: false });
      expect(report.missing).toEqual([
        'bert.pooler.dense.weight',
        'bert.pooler.dense.bias',
        'classifier.weight',
        'classifier.bias',
      ]);
      expect(report.unexpected).toEqual(
        expect.arrayContaining(['cls.predictions.bias', 'cls.predictions.transform.dense.weight']),
      );
      expect(
        Array.from(
          classifier
            .variables()
            .find((entry) => entry.name === 'pooler/kernel')!
            .variable.dataSync(),
        ),
      ).toEqual(pooler);
      const x = inputs();
      const a = mlm.encode(x, { training: false });
      const b = classifier.encode(x, { training: false });
      expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
      // A classifier head of another size is reported as mismatched, not loaded.
      const { safetensors: three } = await exportHuggingFace(
        createBertModel({ config: tiny, task: { type: 'classification', numLabels: 3 }, seed: 7 }),
      );
      const mismatched = loadHuggingFaceWeights(classifier, readSafetensors(three), { strict: false });
      expect(mismatched.mismatched).toEqual(['classifier.weight', 'classifier.bias']);
      // The encoder must still be complete in non-strict mode.
      const encoderMissing = handBuiltFile(
        tiny,
        { type: 'classification', numLabels: 2 },
        {
          drop: ['bert.encoder.layer.0.attention.self.key.bias'],
        },
      );
      expect(errorOf(() => loadHuggingFaceWeights(classifier, encoderMissing, { strict: false })).code).toBe(
        'CHECKPOINT_MISMATCH',
      );
      tf.dispose([x.inputIds, x.tokenTypeIds, x.attentionMask, a, b]);
      mlm.dispose();
      classifier.dispose();
    });

    it('refuses masks outside [0, 1]', () => {
      const task: BertTask = { type: 'span' };
      const model = createBertModel({ config: tiny, task });
      const file = handBuiltFile(tiny, task, {
        extra: {
          'bert.encoder.layer.0.attention.self.key.weight_mask': {
            dtype: 'U8',
            shape: [4, 4],
            data: new Uint8Array(16).fill(2),
          },
        },
      });
      expect(errorOf(() => loadHuggingFaceWeights(model, file)).message).toMatch(
        /key\.weight_mask": mask values/,
      );
      model.dispose();
    });

    it('refuses NaN and infinite weights, naming the tensor and index, and leaves the model unchanged', async () => {
      const task: BertTask = { type: 'span' };
      const model = createBertModel({ config: tiny, task, seed: 4 });
      const before = await model.variables()[0]!.variable.data();
      const file = handBuiltFile(tiny, task, {
        set: {
          'bert.encoder.layer.1.output.dense.weight': (values) => {
            values[5] = Number.NaN;
          },
          'bert.embeddings.LayerNorm.weight': (values) => {
            values[0] = Number.NEGATIVE_INFINITY;
          },
        },
      });
      const error = errorOf(() => loadHuggingFaceWeights(model, file));
      expect(error.code).toBe('CHECKPOINT_CORRUPT');
      expect(error.message).toContain('"bert.encoder.layer.1.output.dense.weight" holds NaN at index 5');
      expect(error.message).toContain('"bert.embeddings.LayerNorm.weight" holds -Infinity at index 0');
      expect(await model.variables()[0]!.variable.data()).toEqual(before);
      model.dispose();
    });
  });
}

describe('checkpoint directories (Node)', () => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'fineprune-transformers-'));
  afterAll(() => fs.rmSync(directory, { recursive: true, force: true }));

  it('saves and reloads a pruned model with identical outputs', async () => {
    await setBackend('cpu');
    const model = createBertModel({ config: tiny, task: { type: 'classification', numLabels: 3 }, seed: 12 });
    pruneSome(model);
    const target = path.join(directory, 'nested', 'pruned');
    const written = await saveHuggingFaceDirectory(model, target, { includeMasks: true });
    expect(fs.readdirSync(target).sort()).toEqual(['config.json', 'model.safetensors']);
    const json = JSON.parse(fs.readFileSync(written.config, 'utf8'));
    expect(json.architectures).toEqual(['BertForSequenceClassification']);
    expect(json.hidden_size).toBe(4);
    const { model: reloaded, report } = await loadHuggingFaceDirectory(target);
    expect(report.masks.length).toBe(12);
    expect(reloaded.task).toEqual(model.task);
    expect(outputsOf(reloaded)).toEqual(outputsOf(model));
    await expect(loadHuggingFaceDirectory(path.join(directory, 'absent'))).rejects.toMatchObject({
      code: 'IO_FAILED',
    });
    model.dispose();
    reloaded.dispose();
  });

  it('checks config.json and every tensor against it before building the model', async () => {
    await setBackend('cpu');
    const model = createBertModel({ config: tiny, task: { type: 'classification', numLabels: 3 }, seed: 2 });
    const source = path.join(directory, 'source');
    await saveHuggingFaceDirectory(model, source);
    model.dispose();
    const variant = (name: string, edit: (json: Record<string, unknown>) => void) => {
      const target = path.join(directory, name);
      fs.cpSync(source, target, { recursive: true });
      const json = JSON.parse(fs.readFileSync(path.join(target, 'config.json'), 'utf8'));
      edit(json);
      fs.writeFileSync(path.join(target, 'config.json'), JSON.stringify(json));
      return target;
    };
    const tensors = tf.memory().numTensors;
    // vocab_size 2^40: refused from the sizes alone.
    const huge = await loadHuggingFaceDirectory(
      variant('huge', (json) => {
        json.vocab_size = 2 ** 40;
      }),
    ).then(
      () => undefined,
      (error: FinepruneError) => error,
    );
    expect(huge?.code).toBe('INVALID_ARGUMENT');
    expect(huge?.message).toContain(
      `${path.join(directory, 'huge', 'config.json')}: EncoderConfig describes an encoder of about`,
    );
    expect(huge?.details).toMatchObject({ file: path.join(directory, 'huge', 'config.json') });
    // A plausible size the weights do not have: refused by the shapes, before the model is built
    // (building it makes one tf.Variable per weight).
    const makeVariable = vi.spyOn(tf.engine(), 'makeVariable');
    const other = await loadHuggingFaceDirectory(
      variant('other', (json) => {
        json.vocab_size = 1000;
      }),
    ).then(
      () => undefined,
      (error: FinepruneError) => error,
    );
    expect(makeVariable).not.toHaveBeenCalled();
    makeVariable.mockRestore();
    expect(other?.code).toBe('CHECKPOINT_MISMATCH');
    expect(other?.message).toContain(
      'word_embeddings.weight": F32 [13,4] in the file, F32 [1000,4] expected',
    );
    expect(tf.memory().numTensors).toBe(tensors);
    // A config.json of nested brackets, or a FIFO, fails at once.
    const deep = path.join(directory, 'deep');
    fs.cpSync(source, deep, { recursive: true });
    fs.writeFileSync(path.join(deep, 'config.json'), '['.repeat(1_000_000));
    await expect(loadHuggingFaceDirectory(deep)).rejects.toMatchObject({ code: 'CHECKPOINT_CORRUPT' });
    const fifo = path.join(directory, 'fifo');
    fs.cpSync(source, fifo, { recursive: true });
    fs.rmSync(path.join(fifo, 'config.json'));
    execFileSync('mkfifo', [path.join(fifo, 'config.json')]);
    await expect(loadHuggingFaceDirectory(fifo)).rejects.toThrow(/is not a regular file/);
  });
});
