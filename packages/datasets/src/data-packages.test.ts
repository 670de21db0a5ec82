import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FinepruneError } from '@fineprune/tensor';
import { afterAll, describe, expect, it } from 'vitest';
import { type DataPackage, dataPackageDirectory } from './data-packages';

const root = mkdtempSync(join(tmpdir(), 'fineprune-data-packages-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const fake: DataPackage = {
  name: 'fineprune-fake-data',
  version: '2.0.1',
  contents: 'The fake corpus',
  peerOf: '@fineprune/example',
};

/** A project directory holding `node_modules/<name>/package.json`. */
function projectWith(project: string, name: string): string {
  const directory = join(root, project);
  mkdirSync(join(directory, 'node_modules', name), { recursive: true });
  writeFileSync(join(directory, 'node_modules', name, 'package.json'), JSON.stringify({ name }));
  return directory;
}

function thrown(run: () => unknown): FinepruneError {
  try {
    run();
  } catch (error) {
    expect(FinepruneError.is(error)).toBe(true);
    return error as FinepruneError;
  }
  throw new Error('expected a FinepruneError');
}

describe('dataPackageDirectory', () => {
  const empty = join(root, 'empty');
  mkdirSync(empty);
  const first = projectWith('first', fake.name);
  const second = projectWith('second', fake.name);

  it('returns the package root from the first directory that resolves it', () => {
    expect(dataPackageDirectory(fake, [empty, second, first])).toBe(join(second, 'node_modules', fake.name));
    expect(dataPackageDirectory(fake, [first, second])).toBe(join(first, 'node_modules', fake.name));
  });

  it("resolves like Node: from a subdirectory through its parents' node_modules", () => {
    const nested = join(first, 'recipes', 'mnist');
    mkdirSync(nested, { recursive: true });
    expect(dataPackageDirectory(fake, [nested])).toBe(join(first, 'node_modules', fake.name));
  });

  it('says what is missing and the exact install command when nothing resolves it', () => {
    const missing = { ...fake, name: 'fineprune-data-nobody-installed' };
    const error = thrown(() => dataPackageDirectory(missing, [empty, first]));
    expect(error.code).toBe('MISSING_DEPENDENCY');
    expect(error.fix).toContain('npm install fineprune-data-nobody-installed@2.0.1');
    expect(error.message).toContain(
      'The fake corpus is read from the npm package fineprune-data-nobody-installed',
    );
    expect(error.message).toContain('optional peer dependency of @fineprune/example');
    expect(error.details).toEqual({
      package: 'fineprune-data-nobody-installed',
      version: '2.0.1',
      searched: [empty, first],
    });
    expect((error.cause as NodeJS.ErrnoException).code).toBe('MODULE_NOT_FOUND');
  });
});
