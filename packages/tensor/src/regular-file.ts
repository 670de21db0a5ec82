/**
 * Reading a file a user names as untrusted input, in Node.js: only a regular file (a FIFO or a
 * device fails at once instead of hanging or growing without end), only up to a size limit.
 */

import { ErrorCodes, FinepruneError, type FinepruneErrorCode } from './errors';
import { importNodeBuiltin, type NodeBuiltins } from './runtime';

/**
 * Options of {@link readRegularFile}.
 *
 * @example
 * ```ts
 * const options: ReadRegularFileOptions = { maxBytes: 64 * 1024 ** 2, what: 'the recipe' };
 * ```
 */
export interface ReadRegularFileOptions {
  /** Refuse files larger than this many bytes. */
  maxBytes: number;
  /** How messages name the file's role, e.g. `'the safetensors file'`. Default `'the file'`. */
  what?: string;
  /** The fix of the errors. Default: check the path. */
  fix?: string;
  /** The code when the file is not regular or too large (it cannot be opened: always `IO_FAILED`). */
  code?: FinepruneErrorCode;
}

type NodeFs = NodeBuiltins['fs'];

/**
 * Reads a whole regular file of at most `maxBytes` bytes. It is opened without blocking and
 * checked with `fstat` on the open handle, so what is read is what was checked.
 *
 * @param file - the path
 * @param options - `maxBytes`, and how errors read
 * @returns the bytes
 * @throws FinepruneError `IO_FAILED` when it cannot be opened or read; `options.code` (default
 *   `IO_FAILED`) when it is not a regular file or is larger than `maxBytes`; each names the path
 *
 * @example
 * ```ts
 * const bytes = await readRegularFile('model.safetensors', { maxBytes: 2 ** 31 - 1 });
 * ```
 */
export async function readRegularFile(file: string, options: ReadRegularFileOptions): Promise<Uint8Array> {
  const what = options.what ?? 'the file';
  const fix = options.fix ?? 'Check the path and that the file is readable.';
  const code = options.code ?? ErrorCodes.IO_FAILED;
  const fail = (errorCode: FinepruneErrorCode, message: string, cause?: unknown, extra = {}) =>
    new FinepruneError({
      code: errorCode,
      message,
      fix,
      ...(cause !== undefined ? { cause } : {}),
      details: { path: file, ...extra },
    });
  const fs = await importNodeBuiltin('fs', `Reading ${what} from disk`);
  let handle: Awaited<ReturnType<NodeFs['promises']['open']>>;
  try {
    handle = await fs.promises.open(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (error) {
    throw fail(ErrorCodes.IO_FAILED, `Cannot read ${what} ${file}: ${(error as Error).message}`, error);
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile())
      throw fail(
        code,
        `${what[0]!.toUpperCase()}${what.slice(1)} ${file} is not a regular file (a directory, device, FIFO or socket).`,
      );
    if (stats.size > options.maxBytes) {
      throw fail(
        code,
        `${what[0]!.toUpperCase()}${what.slice(1)} ${file} has ${stats.size} bytes, more than the ${options.maxBytes} this reader accepts.`,
        undefined,
        { bytes: stats.size, maxBytes: options.maxBytes },
      );
    }
    const bytes = await handle.readFile();
    if (bytes.length > options.maxBytes)
      throw fail(code, `${what} ${file} grew past ${options.maxBytes} bytes while it was read.`);
    return bytes;
  } catch (error) {
    if (FinepruneError.is(error)) throw error;
    throw fail(ErrorCodes.IO_FAILED, `Cannot read ${what} ${file}: ${(error as Error).message}`, error);
  } finally {
    await handle.close().catch(() => undefined);
  }
}
