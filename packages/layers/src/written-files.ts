/**
 * The record of weights files {@link fileSystem} wrote into a folder, so that clean-up removes only
 * those: never a file an old model.json names that this library did not write, never a user's
 * file. A weights file is recorded before it is written, so one left behind by a crash is still
 * known and removed by the next save.
 */

import type { NodeModules } from './node-modules';

/** The record's file name in the model folder. */
export const WRITTEN_FILES = '.fineprune-written.json';
/** Weights files this handler writes: `weights.<time>-<pid>-<random>.bin`. */
const OWN_WEIGHTS_FILE = /^weights\.[0-9a-z]+-[0-9]+-[0-9a-z]+\.bin$/;

/** A fresh weights file name, unique per process and time. */
export function uniqueWeightsName(): string {
  const time = Date.now().toString(36);
  const random = Math.floor(Math.random() * 36 ** 6).toString(36);
  return `weights.${time}-${process.pid}-${random}.bin`;
}

/** A temporary file name beside `file`, unique to this process and call. */
export function temporaryName(file: string): string {
  return `${file}.${process.pid}-${Math.floor(Math.random() * 36 ** 6).toString(36)}.tmp`;
}

/**
 * Writes `data` to a new file (failing if it exists) and flushes it to disk before closing; a file
 * it created but could not complete is removed.
 */
export async function writeDurably(
  { fs }: NodeModules,
  file: string,
  data: Uint8Array | string,
): Promise<void> {
  const handle = await fs.promises.open(file, 'wx');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await fs.promises.rm(file, { force: true }).catch(() => undefined);
    throw error;
  }
  await handle.close();
}

/** Writes a file atomically: a flushed temporary file renamed over it. */
export async function replaceDurably(
  modules: NodeModules,
  file: string,
  data: Uint8Array | string,
): Promise<void> {
  const temporary = temporaryName(file);
  await writeDurably(modules, temporary, data);
  try {
    await modules.fs.promises.rename(temporary, file);
  } catch (error) {
    await modules.fs.promises.rm(temporary, { force: true }).catch(() => undefined);
    throw error;
  }
}

/** The weights files recorded in `directory` (names only; anything malformed counts as none). */
export async function readWrittenFiles({ fs, path }: NodeModules, directory: string): Promise<Set<string>> {
  try {
    const json = JSON.parse(await fs.promises.readFile(path.join(directory, WRITTEN_FILES), 'utf8')) as {
      files?: unknown;
    };
    const files = Array.isArray(json.files) ? json.files : [];
    return new Set(
      files.filter((file): file is string => typeof file === 'string' && OWN_WEIGHTS_FILE.test(file)),
    );
  } catch {
    return new Set();
  }
}

/** Replaces the record with `files`. */
export async function recordWrittenFiles(
  modules: NodeModules,
  directory: string,
  files: ReadonlySet<string>,
): Promise<void> {
  const text = JSON.stringify({ formatVersion: 1, files: [...files].sort() });
  await replaceDurably(modules, modules.path.join(directory, WRITTEN_FILES), text);
}

/**
 * Removes the recorded files other than `keep` (only regular files with this handler's naming;
 * links and anything else are left alone) and records what remains. Failures are ignored: the
 * files stay recorded and the next save tries again.
 */
export async function removeStaleFiles(
  modules: NodeModules,
  directory: string,
  recorded: ReadonlySet<string>,
  keep: string,
): Promise<void> {
  const { fs, path } = modules;
  const remaining = new Set<string>([keep]);
  for (const file of recorded) {
    if (file === keep || !OWN_WEIGHTS_FILE.test(file)) continue;
    const target = path.join(directory, file);
    try {
      const stats = await fs.promises.lstat(target).catch(() => undefined);
      if (stats?.isFile()) await fs.promises.rm(target);
      else if (stats !== undefined) continue; // a directory or a link under our name: not ours, forget it
    } catch {
      remaining.add(file);
    }
  }
  await recordWrittenFiles(modules, directory, remaining).catch(() => undefined);
}
