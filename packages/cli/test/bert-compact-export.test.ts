import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { validateRecipe } from '@fineprune/recipes';
import {
  assembleCompactModel,
  type CompactHeader,
  type CompactModel,
  huggingFaceConfigOf,
  prepareCompactProjections,
  readCompactFile,
  readCompactModel,
  sparseDense,
} from '@fineprune/sparse';
import { FinepruneError, setBackend } from '@fineprune/tensor';
import {
  type BertModel,
  bertBaseUncasedConfig,
  configFromHuggingFace,
  createBertModel,
  exportHuggingFace,
  huggingFaceNames,
  huggingFaceTensors,
  loadHuggingFaceTensors,
  type ProjectionFunction,
} from '@fineprune/transformers';
import { loadBertCheckpoint, saveHuggingFaceDirectory } from '@fineprune/transformers/node';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli';
import { compactBertBytes } from '../src/export-bert';
import { ExitCodes } from '../src/exit-codes';
import { runRecipe } from '../src/run-recipe';
import { bertRecipe, logitsOfTwoRows, spamJsonl, tinyBertFolder } from './bert-support';
import { findAll, parseSvg, plotMarkup } from './parse-svg';
import { captureIo, temporaryDirectory } from './support';

const task = { type: 'classification', numLabels: 2 } as const;

/** A BERT model built from a compact export: densified, or with its projections on the sparse kernels. */
function modelFromCompact(compact: CompactModel, mode: 'densified' | 'sparse') {
  const config = configFromHuggingFace(huggingFaceConfigOf(compact));
  const projections = huggingFaceNames(config, task).filter((entry) => entry.prunableGroup !== undefined);
  const prepared =
    mode === 'sparse'
      ? prepareCompactProjections(
          compact,
          projections.map((entry) => entry.huggingFaceName),
          { mode: 'sparse' },
        )
      : new Map();
  const functions = new Map<string, ProjectionFunction>(
    projections
      .filter((entry) => prepared.has(entry.huggingFaceName))
      .map((entry) => [
        entry.name,
        (hidden) => sparseDense(hidden, prepared.get(entry.huggingFaceName)!) as tf.Tensor2D,
      ]),
  );
  const model = createBertModel({ config, task, ...(mode === 'sparse' ? { projections: functions } : {}) });
  const dispose = () => {
    model.dispose();
    for (const weights of prepared.values()) weights.dispose();
  };
  try {
    loadHuggingFaceTensors(
      model,
      compact.tensors.map((tensor) => ({ name: tensor.name, shape: tensor.shape, values: tensor.dense() })),
    );
  } catch (error) {
    dispose();
    throw error;
  }
  return { model, dispose };
}

/** Max |a − b| over the largest |b|. */
function relative(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]! / tf.max(tf.abs(b)).dataSync()[0]!);
}

/**
 * The data section of a float32 compact export, derived from the kept counts (no kept weight is
 * exactly 0, so the nonzeros of W ⊙ M are the kept ones): tensors without a mask at 4 bytes per
 * entry (none of them holds a zero), and each projection [out, in] with K kept of
 * P = out · in in the smallest of dense 4P, bitmap ⌈P/8⌉ + 4K, and delta out + K + 4K (one varint
 * byte per row count and per gap: in ≤ 64 < 128).
 */
async function expectedDataBytes(model: BertModel): Promise<{ bytes: number; kept: number; total: number }> {
  let bytes = 0;
  let kept = 0;
  let total = 0;
  for (const tensor of await huggingFaceTensors(model, { includeMasks: true })) {
    const size = tensor.values.length;
    if (!tensor.prunable) {
      bytes += 4 * size;
      continue;
    }
    const outputs = tensor.shape[0]!;
    const keptHere = tensor.mask!.reduce((sum, value) => sum + value, 0);
    kept += keptHere;
    total += size;
    bytes += Math.min(4 * size, Math.ceil(size / 8) + 4 * keptHere, outputs + 5 * keptHere);
  }
  return { bytes, kept, total };
}

beforeAll(async () => {
  await setBackend('cpu');
});

describe('the compact sparse export of a BERT model', () => {
  it('export.format: sparse writes it; it loads through @fineprune/sparse with the masked model’s logits, smaller by what the masks prune; fineprune export writes the same bytes', async () => {
    const directory = temporaryDirectory();
    // Width 32: the projections (32 768 weights) outweigh the header a compact export adds.
    const folder = await tinyBertFolder(directory, 2, { hiddenSize: 32, intermediateSize: 64 });
    spamJsonl(directory);
    const before = tf.memory().numTensors;
    const outcome = await runRecipe({
      recipe: validateRecipe(bertRecipe({ export: { format: 'sparse' } })),
      baseDirectory: directory,
    });
    expect(outcome.status).toBe('completed');
    expect(tf.memory().numTensors).toBe(before);
    const out = path.join(directory, 'out', 'tiny-bert');
    const file = path.join(out, 'model', 'model.fpsparse');
    const compact = await readCompactFile(file);

    // The masked model: the run's final checkpoint.
    const { model: masked, state } = await loadBertCheckpoint(path.join(out, 'checkpoint'));
    tf.dispose(Object.values(state.tensors));
    const expected = logitsOfTwoRows(masked);
    // Densified: the same float32 values W ⊙ M through the same ops — equal exactly.
    const densified = modelFromCompact(compact, 'densified');
    const fromDense = logitsOfTwoRows(densified.model);
    expect(Array.from(fromDense.dataSync())).toEqual(Array.from(expected.dataSync()));
    // Sparse kernels: the same products summed in another order, through two layers: ≤ 1e-6 relative.
    const sparse = modelFromCompact(compact, 'sparse');
    const fromSparse = logitsOfTwoRows(sparse.model);
    expect(relative(fromSparse, expected)).toBeLessThanOrEqual(1e-6);

    // Size: the data section is what the kept counts give, and the file is smaller than the dense
    // float32 safetensors file of the same model.
    const { bytes, kept, total } = await expectedDataBytes(masked);
    expect(kept / total).toBeCloseTo(0.5, 1);
    expect(compact.header.dataBytes).toBe(bytes);
    const { safetensors } = await exportHuggingFace(masked);
    expect(compact.byteLength).toBeLessThan(safetensors.length);
    // The same model saved as a Hugging Face folder without its masks (what export.format: huggingface
    // writes; it loads with masks of ones) exports to the same bytes: the zeros of W ⊙ M are left out.
    const maskless = path.join(temporaryDirectory(), 'bert-pruned');
    await saveHuggingFaceDirectory(masked, maskless);
    tf.dispose([expected, fromDense, fromSparse]);
    densified.dispose();
    sparse.dispose();
    masked.dispose();
    expect(tf.memory().numTensors).toBe(before);

    // fineprune export of the run's BERT checkpoint writes the same file.
    const exported = temporaryDirectory();
    const io = captureIo();
    expect(await main(['export', out, '--out', exported, '--format', 'sparse', '--json'], io), io.err()).toBe(
      ExitCodes.OK,
    );
    const summary = JSON.parse(io.out());
    expect(summary.format).toBe('sparse');
    expect(summary.bytes).toBe(compact.byteLength);
    // Its summary counts the twelve projections: what the masks keep (no kept weight is exactly 0).
    expect([summary.kept, summary.total]).toEqual([kept, total]);
    expect(readFileSync(path.join(exported, 'model.fpsparse'))).toEqual(readFileSync(file));

    // fineprune report --html of the run draws Fig. 6: one bar per layer × projection, as run.json says.
    const html = path.join(temporaryDirectory(), 'report.html');
    const report = captureIo();
    expect(await main(['report', out, '--html', html], report), report.err()).toBe(ExitCodes.OK);
    const chart = parseSvg(plotMarkup(readFileSync(html, 'utf8'), 'encoder-remaining')!);
    const bars = findAll(chart, (element) => element.name === 'rect' && element.attributes.class === 'mark');
    expect(bars).toHaveLength(12);
    const rows = JSON.parse(readFileSync(path.join(out, 'run.json'), 'utf8')).layers as Array<{
      name: string;
      kept: number;
      total: number;
    }>;
    for (const bar of bars) {
      const suffix = {
        Q: 'attention/query',
        K: 'attention/key',
        V: 'attention/value',
        AO: 'attention/output',
        I: 'ffn/intermediate',
        O: 'ffn/output',
      }[bar.attributes['data-projection']!];
      const source = rows.find(
        (row) => row.name === `layer_${bar.attributes['data-layer']}/${suffix}/kernel`,
      )!;
      expect(Number(bar.attributes['data-kept'])).toBe(source.kept);
      expect(Number(bar.attributes['data-remaining'])).toBeCloseTo((source.kept / source.total) * 100, 10);
    }

    const fromFolder = temporaryDirectory();
    const folderIo = captureIo();
    expect(
      await main(['export', maskless, '--out', fromFolder, '--format', 'sparse'], folderIo),
      folderIo.err(),
    ).toBe(ExitCodes.OK);
    expect(readFileSync(path.join(fromFolder, 'model.fpsparse'))).toEqual(readFileSync(file));

    // A BERT model has no TF.js layers export.
    const tfjs = captureIo();
    expect(await main(['export', out, '--out', temporaryDirectory()], tfjs)).toBe(ExitCodes.INVALID_RECIPE);
    expect(tfjs.err()).toContain('--format sparse');

    // The unpruned folder the run started from: float32 is not smaller than its model.safetensors, so
    // it is refused (nothing written); int8 is about 4× smaller.
    const refused = temporaryDirectory();
    const larger = captureIo();
    expect(await main(['export', folder, '--out', refused, '--format', 'sparse'], larger)).toBe(ExitCodes.IO);
    expect(larger.err()).toContain('LARGER_THAN_SOURCE');
    const int8 = captureIo();
    expect(
      await main(
        ['export', folder, '--out', refused, '--format', 'sparse', '--values', 'int8', '--json'],
        int8,
      ),
      int8.err(),
    ).toBe(ExitCodes.OK);
    const int8Summary = JSON.parse(int8.out());
    expect(int8Summary.referenceBytes).toBe(statSync(path.join(folder, 'model.safetensors')).size);
    expect(int8Summary.bytes).toBeLessThan(int8Summary.referenceBytes);
  }, 120_000);

  it('reads an edited or damaged export back only as typed errors naming the file and the tensor', async () => {
    const model = createBertModel({
      config: {
        ...bertBaseUncasedConfig,
        vocabSize: 20,
        hiddenSize: 8,
        numLayers: 1,
        numHeads: 2,
        intermediateSize: 16,
        maxPositions: 8,
      },
      task,
      seed: 3,
    });
    const bytes = await compactBertBytes(model, { allowLarger: true });
    model.dispose();
    const { header } = await readCompactModel(bytes);
    const data = bytes.slice(bytes.length - header.dataBytes);
    const before = tf.memory().numTensors;
    /** The error message of building a model from the export with one edit, sealed again. */
    const failure = async (edit: (copy: CompactHeader) => void, mode: 'densified' | 'sparse' = 'sparse') => {
      const copy = structuredClone(header);
      edit(copy);
      try {
        const compact = await readCompactModel(await assembleCompactModel(copy, data), {
          source: 'bert.fpsparse',
        });
        modelFromCompact(compact, mode).dispose();
      } catch (error) {
        expect(FinepruneError.is(error), String(error)).toBe(true);
        return (error as Error).message; // "[CODE] cause. Fix: …"
      }
      return 'loaded';
    };
    const config = (copy: CompactHeader) => (copy.model as { config: Record<string, unknown> }).config;
    // A config describing 2^40 embeddings: refused before anything is allocated.
    expect(
      await failure((copy) => {
        config(copy).vocab_size = 2 ** 40;
      }),
    ).toMatch(/^\[INVALID_ARGUMENT\] .*vocabSize 1099511627776/);
    // A config that does not fit the tensors (hidden size 16).
    expect(
      await failure((copy) => {
        config(copy).hidden_size = 16;
      }, 'densified'),
    ).toMatch(
      /^\[CHECKPOINT_MISMATCH\] .*"bert\.embeddings\.word_embeddings\.weight": F32 \[20,8\] in the file, F32 \[20,16\] expected/,
    );
    // A projection renamed: missing for the sparse kernels, named with the file.
    const renamed = await failure((copy) => {
      copy.tensors.find((entry) => entry.name.endsWith('attention.self.query.weight'))!.name = 'query.weight';
    });
    expect(renamed).toMatch(
      /^\[CHECKPOINT_MISMATCH\] bert\.fpsparse holds no tensor "bert\.encoder\.layer\.0\.attention\.self\.query\.weight"/,
    );
    // A layers model's header: not a Hugging Face model.
    expect(
      await failure((copy) => {
        copy.model = { kind: 'tensors' };
      }),
    ).toMatch(/^\[CHECKPOINT_MISMATCH\] bert\.fpsparse holds a "tensors" model/);
    // One flipped data byte: the content hash.
    const flipped = bytes.slice();
    flipped[flipped.length - 5]! ^= 1;
    await expect(readCompactModel(flipped, { source: 'bert.fpsparse' })).rejects.toThrow(/bert\.fpsparse/);
    expect(tf.memory().numTensors).toBe(before);
  });
});
