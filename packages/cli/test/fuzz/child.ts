/**
 * The fuzz suite's child process: runs one case at a time, as the harness sends them, and reports
 * how each ended. Started by harness.ts with a V8 heap cap; the harness also watches its memory
 * and kills it on a hang. Never run by vitest itself.
 */

import path from 'node:path';
import { loadIdxPair } from '@fineprune/datasets';
import { FinepruneError } from '@fineprune/core';
import { fileSystem, loadCheckpoint } from '@fineprune/layers';
import { decodeFloat32, decodeInt32, dtypeInfo } from '@fineprune/safetensors';
import { readSafetensorsFile } from '@fineprune/safetensors/node';
import { setBackend } from '@fineprune/tensor';
import { loadHuggingFaceDirectory } from '@fineprune/transformers/node';
import { createBertTokenizer } from '@fineprune/text';
import * as tf from '@tensorflow/tfjs-core';
import { loadSparseLayersModel, readCompactFile } from '@fineprune/sparse';
import { loadDenseLayersModel } from '@fineprune/sparse/layers';
import { main } from '../../src/cli';
import { loadImageFolder } from '../../src/data/image-folder';
import { loadTextData } from '../../src/data/text-data';
import { loadSavedModel } from '../../src/models';
import type { ChildResult, FuzzCase } from './protocol';

const MESSAGE_KEPT = 2000;
/** The densified size the compact loaders may reach here: 256 MiB, within the memory cap. */
export const COMPACT_MAX_DENSE_BYTES = 256 * 1024 ** 2;

type Outcome = Pick<ChildResult, 'outcome' | 'code' | 'message' | 'messageLength'>;

function fromError(error: unknown): Outcome {
  if (FinepruneError.is(error))
    return {
      outcome: 'typed',
      code: error.code,
      message: error.message.slice(0, MESSAGE_KEPT),
      messageLength: error.message.length,
    };
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  return {
    outcome: 'untyped',
    code: 'UNTYPED',
    message: text.slice(0, MESSAGE_KEPT),
    messageLength: text.length,
  };
}

/** Runs the CLI; exit code 1 is its "internal error" (an untyped crash), others carry a code. */
async function cli(argv: string[]): Promise<Outcome> {
  let stderr = '';
  const sink = { write: () => undefined };
  const exit = await main(argv, {
    stdout: sink,
    stderr: {
      write: (text: string) => {
        stderr += text;
      },
    },
  });
  if (exit === 0) return { outcome: 'ok', code: 'OK', message: '', messageLength: 0 };
  const code = /^error \[([A-Z_]+)\]/m.exec(stderr)?.[1];
  return {
    outcome: exit === 1 || code === undefined ? 'untyped' : 'typed',
    code: code ?? `EXIT_${exit}`,
    message: stderr.slice(0, MESSAGE_KEPT),
    messageLength: stderr.length,
  };
}

async function run(fuzzCase: FuzzCase): Promise<Outcome> {
  const [first = '', second = ''] = fuzzCase.paths;
  switch (fuzzCase.operation) {
    case 'report':
      return cli(['report', first, '--json']);
    case 'export':
      return cli(['export', first, '--out', second, '--json']);
    case 'validate':
      return cli(['validate', first]);
    case 'load-checkpoint': {
      const { model, state } = await loadCheckpoint(fileSystem(first), { loss: 'meanSquaredError' });
      tf.dispose(Object.values(state.tensors));
      model.dispose();
      break;
    }
    case 'load-model':
      // The path of a recipe's model.path (and a distillation teacher).
      (await loadSavedModel(first, { baseDirectory: path.dirname(first) })).dispose();
      break;
    case 'idx':
      await loadIdxPair(first, second, { name: path.basename(first), classes: 10 });
      break;
    case 'safetensors': {
      const file = await readSafetensorsFile(first);
      for (const tensor of file.tensors.values())
        if (dtypeInfo(tensor.dtype).kind === 'float') decodeFloat32(tensor);
        else decodeInt32(tensor);
      break;
    }
    case 'huggingface':
      (await loadHuggingFaceDirectory(first)).model.dispose();
      break;
    case 'text-data':
      // A recipe's data.text (schema defaults: 1 MiB rows), tokenized with bert-base-uncased.
      await loadTextData(
        {
          train: path.basename(first),
          delimiter: ',',
          textColumn: 'text',
          labelColumn: 'label',
          maxRowBytes: 1 << 20,
        },
        { baseDirectory: path.dirname(first), tokenizer: createBertTokenizer(), maxLength: 16, seed: 0 },
      );
      break;
    case 'image-folder':
      // A recipe's data.images of 4 × 4 grey images (schema defaults otherwise).
      await loadImageFolder(
        { train: first, width: 4, height: 4, channels: 1, resize: 'none', maxImageBytes: 16 * 1024 * 1024 },
        { baseDirectory: '/', seed: 0 },
      );
      break;
    case 'load-compact': {
      // Both loaders of @fineprune/sparse: stock TF.js with every weight densified (memory bounded
      // by maxDenseBytes), and the sparse executor.
      const compact = await readCompactFile(first, { maxDenseBytes: COMPACT_MAX_DENSE_BYTES });
      (await loadDenseLayersModel(compact, { source: first })).dispose();
      (await loadSparseLayersModel(compact, { source: first, mode: 'sparse' })).dispose();
      break;
    }
  }
  return { outcome: 'ok', code: 'OK', message: '', messageLength: 0 };
}

async function answer(fuzzCase: FuzzCase): Promise<void> {
  let outcome: Outcome;
  try {
    outcome = await run(fuzzCase);
  } catch (error) {
    outcome = fromError(error);
  }
  const result: ChildResult = {
    id: fuzzCase.id,
    ...outcome,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
  };
  process.send!(result);
}

await setBackend('cpu');
process.on('message', (fuzzCase: FuzzCase) => void answer(fuzzCase));
process.send!({ ready: true });
