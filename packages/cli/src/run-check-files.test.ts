import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { errorOf } from '@fineprune/core/testing';
import { type RecipeInput, validateRecipe } from '@fineprune/recipes';
import { describe, expect, it } from 'vitest';
import { temporaryDirectory } from '../test/support';
import { checkRecipeFiles } from './run-check-files';

function recipe(data: RecipeInput['data'], model: RecipeInput['model'] = { builtin: 'mlp-4-2' }) {
  return validateRecipe({
    version: 1,
    name: 'files',
    model,
    data,
    training: { steps: 1, optimizer: { learningRate: 0.1 } },
    pruning: [
      {
        scores: { id: 'magnitude' },
        mask: { id: 'topV' },
        schedule: { id: 'constant', options: { sparsity: 0.5 } },
      },
    ],
  });
}

describe('checkRecipeFiles (validate and the start of run)', () => {
  it('accepts the files and folders a recipe names when they are there', () => {
    const directory = temporaryDirectory();
    writeFileSync(path.join(directory, 'train.csv'), 'text,label\n');
    mkdirSync(path.join(directory, 'images'));
    mkdirSync(path.join(directory, 'bert'));
    writeFileSync(path.join(directory, 'bert', 'config.json'), '{}');
    writeFileSync(path.join(directory, 'bert', 'model.safetensors'), '');
    expect(() =>
      checkRecipeFiles(recipe({ text: { train: 'train.csv' } }, { huggingFace: './bert' }), directory),
    ).not.toThrow();
    expect(() =>
      checkRecipeFiles(recipe({ images: { train: 'images', width: 2, height: 2 } }), directory),
    ).not.toThrow();
  });

  it.each([
    [
      'a missing training file',
      { text: { train: 'absent.jsonl' } },
      undefined,
      'data.text.train',
      'does not exist',
    ],
    [
      'a folder as the validation file',
      { text: { train: 'train.csv', validation: 'images' } },
      undefined,
      'data.text.validation',
      'is not a regular file',
    ],
    [
      'a file as the image folder',
      { images: { train: 'train.csv', width: 2, height: 2 } },
      undefined,
      'data.images.train',
      'is not a folder',
    ],
    [
      'a missing vocabulary',
      { text: { train: 'train.csv' }, tokenizer: { vocabulary: 'vocab.txt' } },
      undefined,
      'data.tokenizer.vocabulary',
      'does not exist',
    ],
    [
      'a BERT folder without weights',
      { text: { train: 'train.csv' } },
      { huggingFace: './bert' },
      'model.huggingFace',
      'model.safetensors does not exist',
    ],
  ] as const)(
    'refuses %s with IO_FAILED naming the recipe path and the file',
    (_label, data, model, where, message) => {
      const directory = temporaryDirectory();
      writeFileSync(path.join(directory, 'train.csv'), 'text,label\n');
      mkdirSync(path.join(directory, 'images'));
      mkdirSync(path.join(directory, 'bert'));
      writeFileSync(path.join(directory, 'bert', 'config.json'), '{}');
      const error = errorOf(() => checkRecipeFiles(recipe(data as RecipeInput['data'], model), directory));
      expect(error.code).toBe('IO_FAILED');
      expect(error.message).toContain(`${where}: `);
      expect(error.message).toContain(message);
      expect(error.details).toMatchObject({ path: where });
    },
  );
});
