import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitCodes } from '../src/exit-codes';
import { BIN, recipeFile, temporaryDirectory, tinyRecipe } from './support';

/**
 * Runs the real `fineprune` binary (from source) and collects its exit code and output;
 * `onOutput` sees stdout and stderr so far whenever either grows, with the child process.
 */
function fineprune(
  args: string[],
  onOutput?: (stdout: string, stderr: string, child: ReturnType<typeof spawn>) => void,
  cwd = path.dirname(BIN),
) {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', BIN, ...args], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    onOutput?.(stdout, stderr, child);
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    onOutput?.(stdout, stderr, child);
  });
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A plugin package installed beside a recipe: node_modules/<name> with an ESM entry. */
function installPlugin(directory: string, name: string, source: string): void {
  const root = path.join(directory, 'node_modules', name);
  mkdirSync(root, { recursive: true });
  writeFileSync(
    path.join(root, 'package.json'),
    JSON.stringify({ name, version: '1.0.0', type: 'module', exports: './index.js' }),
  );
  writeFileSync(path.join(root, 'index.js'), source);
}

describe('the fineprune binary ends every path with a documented exit code', () => {
  it('prints its package version with --version (exit 0)', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    for (const flag of ['--version', '-V']) {
      const { code, stdout } = await fineprune([flag]);
      expect(code).toBe(ExitCodes.OK);
      expect(stdout.trim()).toBe(version);
    }
  });

  it('gives up on a plugin package whose import never settles, with a typed error (exit 6)', async () => {
    const directory = temporaryDirectory();
    installPlugin(
      directory,
      'acme-hangs',
      'await new Promise(() => {});\nexport const fineprunePlugins = { plugins: [] };\n',
    );
    const file = recipeFile(tinyRecipe({ plugins: ['acme-hangs'] }), 'hang.yaml', directory);
    const { code, stdout, stderr } = await fineprune(['run', file, '--plugin-timeout', '1', '--json']);
    expect(code).toBe(ExitCodes.PLUGIN_PACKAGE);
    expect(stderr).toMatch(
      /error \[PLUGIN_PACKAGE_FAILED\]: The plugin package "acme-hangs" did not finish importing within 1 s/,
    );
    expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).toMatchObject({
      type: 'error',
      code: 'PLUGIN_PACKAGE_FAILED',
      exitCode: 6,
      details: { package: 'acme-hangs', timeoutMs: 1000 },
    });
  });

  it('never reports success when the command stops with work pending (a plugin that never settles: exit 1)', async () => {
    const directory = temporaryDirectory();
    installPlugin(
      directory,
      'acme-stuck',
      [
        'export const fineprunePlugins = { plugins: [{',
        "  kind: 'hook', id: 'acme/stuck',",
        '  create: () => new Promise(() => {}),',
        '}] };',
        '',
      ].join('\n'),
    );
    const file = recipeFile(
      tinyRecipe({ plugins: ['acme-stuck'], hooks: [{ id: 'acme/stuck' }] }),
      'stuck.yaml',
      directory,
    );
    const { code, stderr } = await fineprune(['run', file, '--quiet']);
    expect(code).toBe(ExitCodes.INTERNAL);
    expect(stderr).toMatch(
      /fineprune stopped before the command finished: something it waited for never settled/,
    );
  });

  it('quits at once with 130 on a second Ctrl-C, without waiting for the step', async () => {
    // a hook that makes the second step last ten minutes, so only the second Ctrl-C can end the run
    const directory = temporaryDirectory();
    installPlugin(
      directory,
      'acme-slow',
      [
        'export const fineprunePlugins = { plugins: [{',
        "  kind: 'hook', id: 'acme/slow',",
        "  create: () => ({ id: 'acme/slow', onStepStart: (context) => context.step >= 1 ? new Promise((resolve) => setTimeout(resolve, 600000)) : undefined }),",
        '}] };',
        '',
      ].join('\n'),
    );
    const file = recipeFile(
      tinyRecipe({ plugins: ['acme-slow'], hooks: [{ id: 'acme/slow' }] }),
      'slow.yaml',
      directory,
    );
    let sent = 0;
    const { code, stdout, stderr } = await fineprune(['run', file, '--json'], (out, err, child) => {
      if (sent === 0 && out.includes('"type":"step"')) {
        sent = 1;
        child.kill('SIGINT');
      } else if (sent === 1 && err.includes('interrupt: finishing the current step')) {
        sent = 2;
        child.kill('SIGINT');
      }
    });
    expect(sent).toBe(2);
    expect(code).toBe(ExitCodes.INTERRUPTED);
    // the second Ctrl-C ended the process inside the step: no interrupted event, no checkpoint
    expect(stdout).not.toMatch(/"type":"(interrupted|checkpoint)"/);
    expect(stderr).not.toMatch(/stopped before the command finished/);
  });
});
