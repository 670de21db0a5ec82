import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { parseRecipe } from '@fineprune/recipes';
import { describe, expect, it } from 'vitest';
import { BIN, RECIPES_DIRECTORY } from './support';

const PLUGIN_DIRECTORY = fileURLToPath(new URL('../../../examples/criterion-plugin', import.meta.url));
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** Runs the real command; rejects (with its stderr) unless it exits with 0. */
function fineprune(args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  return promisify(execFile)(process.execPath, ['--conditions=source', '--import', TSX, BIN, ...args], {
    cwd,
  });
}

// The plugin example is installed beside the example recipes (examples/recipes/node_modules), as a
// user installs it beside theirs; the real command imports it from there by the name the docs give.
describe('the criterion plugin package, by the name its docs give', () => {
  const manifest = JSON.parse(readFileSync(path.join(PLUGIN_DIRECTORY, 'package.json'), 'utf8'));
  const name: string = manifest.name;

  it('is a publishable package whose name the recipe and the install instructions use', () => {
    expect(name).toBe('@fineprune/criterion-snip');
    expect(manifest.private).toBeUndefined();
    expect(manifest.publishConfig).toEqual({ access: 'public' });
    expect(manifest.files).toContain('dist');
    const recipe = parseRecipe(readFileSync(path.join(RECIPES_DIRECTORY, 'snip-plugin.yaml'), 'utf8'), {
      source: 'snip-plugin.yaml',
    });
    expect(recipe.plugins).toEqual([name]);
    const readme = readFileSync(path.join(PLUGIN_DIRECTORY, 'README.md'), 'utf8');
    expect(readme).toContain(`npm install @fineprune/cli ${name}`);
    expect(readFileSync(path.join(RECIPES_DIRECTORY, 'snip-plugin.yaml'), 'utf8')).toContain(
      `npm install ${name}`,
    );
  });

  it('`fineprune plugins @fineprune/criterion-snip` imports it from beside the recipes and lists its plugin', async () => {
    const { stdout } = await fineprune(['plugins', name, '--json'], RECIPES_DIRECTORY);
    const listed = (JSON.parse(stdout) as Array<{ kind: string; id: string; package: string }>).filter(
      (entry) => entry.package === name,
    );
    expect(listed.map(({ kind, id }) => ({ kind, id }))).toEqual([{ kind: 'scores', id: 'community/snip' }]);
  });

  it('`fineprune validate snip-plugin.yaml` loads the package the recipe names', async () => {
    const { stdout } = await fineprune(['validate', 'snip-plugin.yaml'], RECIPES_DIRECTORY);
    expect(stdout).toBe('snip-plugin.yaml: valid\n');
  });
});
