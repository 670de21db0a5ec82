import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliVersion, packageVersionFrom } from './version';

describe('fineprune --version', () => {
  it('reads the version of this package from its package.json', () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(cliVersion()).toBe(version);
  });

  it('finds the package.json of @fineprune/cli above an installed dist/ and skips other packages', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'fineprune-version-'));
    const installed = path.join(root, 'node_modules', '@fineprune', 'cli');
    mkdirSync(path.join(installed, 'dist', 'chunks'), { recursive: true });
    writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'my-app', version: '9.9.9' }));
    writeFileSync(
      path.join(installed, 'package.json'),
      JSON.stringify({ name: '@fineprune/cli', version: '1.2.3' }),
    );
    // a package.json of another package in between (as a bundler might leave) is passed over
    writeFileSync(path.join(installed, 'dist', 'package.json'), JSON.stringify({ type: 'module' }));
    expect(packageVersionFrom(path.join(installed, 'dist', 'chunks'))).toBe('1.2.3');
    expect(packageVersionFrom(path.join(installed, 'dist'))).toBe('1.2.3');
    expect(packageVersionFrom(root)).toBeUndefined();
  });
});
