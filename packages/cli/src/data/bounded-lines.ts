import { constants, promises as fs } from 'node:fs';
import { ErrorCodes } from '@fineprune/core';
import { dataError } from './data-errors';

/**
 * One line of a text file, without its line break, and its 1-based number.
 *
 * @example
 * ```ts
 * for await (const { text, line } of readBoundedLines('train.jsonl', { maxLineBytes: 1 << 20 })) console.log(line, text.length);
 * ```
 */
export interface FileLine {
  text: string;
  line: number;
}

/** Bytes read from the file at a time. */
const CHUNK_BYTES = 64 * 1024;

/**
 * Reads a UTF-8 text file line by line, as untrusted input: only a regular file (a FIFO or device
 * fails at once), one chunk of 64 KiB and at most one line of `maxLineBytes` held at a time, so
 * memory stays bounded whatever the file holds. `\n` and `\r\n` end lines; a byte-order mark at the
 * start is dropped.
 *
 * @param file - the path (messages name it as given)
 * @param options - `maxLineBytes`: the longest line accepted
 * @returns the lines, in order
 * @throws FinepruneError `IO_FAILED` when the file cannot be opened or is not a regular file;
 *   `INVALID_DATA` naming the line for a line over `maxLineBytes` (thrown as soon as the limit is
 *   passed, without reading the rest of the line) or bytes that are not UTF-8
 *
 * @example
 * ```ts
 * for await (const { text, line } of readBoundedLines('data/train.csv', { maxLineBytes: 1024 * 1024 })) {
 *   if (text === '') continue;
 * }
 * ```
 */
export async function* readBoundedLines(
  file: string,
  options: { maxLineBytes: number },
): AsyncGenerator<FileLine> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (error) {
    throw dataError(
      { file },
      `cannot be read: ${(error as Error).message}`,
      'Check the path (relative to the recipe) and that the file is readable.',
      {
        code: ErrorCodes.IO_FAILED,
        cause: error,
      },
    );
  }
  try {
    if (!(await handle.stat()).isFile()) {
      throw dataError(
        { file },
        'is not a regular file (a directory, device, FIFO or socket).',
        'Name a data file.',
        {
          code: ErrorCodes.IO_FAILED,
        },
      );
    }
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const decode = (bytes: Uint8Array, line: number) => {
      try {
        return decoder.decode(bytes);
      } catch (error) {
        throw dataError({ file, line }, 'is not valid UTF-8 text.', 'Save the file as UTF-8.', {
          cause: error,
        });
      }
    };
    const buffer = new Uint8Array(CHUNK_BYTES);
    let parts: Uint8Array[] = [];
    let partBytes = 0;
    let line = 1;
    let first = true;
    const tooLong = () =>
      dataError(
        { file, line },
        `is longer than ${options.maxLineBytes} bytes (maxRowBytes).`,
        'Shorten the row, or raise data.text.maxRowBytes (at most 64 MiB) if rows this long are intended.',
        { details: { maxLineBytes: options.maxLineBytes } },
      );
    const take = (end: Uint8Array): string => {
      let bytes: Uint8Array = end;
      if (parts.length > 0) {
        bytes = new Uint8Array(partBytes + end.length);
        let at = 0;
        for (const part of parts) {
          bytes.set(part, at);
          at += part.length;
        }
        bytes.set(end, at);
      }
      parts = [];
      partBytes = 0;
      if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
      if (first && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
      first = false;
      if (bytes.length > options.maxLineBytes) throw tooLong();
      return decode(bytes, line);
    };
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, CHUNK_BYTES, null);
      if (bytesRead === 0) break;
      let start = 0;
      for (;;) {
        const newline = buffer.subarray(start, bytesRead).indexOf(0x0a);
        if (newline < 0) break;
        const end = start + newline;
        // Stop before gathering a line that cannot fit (+1: a \r before the \n is not content).
        if (partBytes + (end - start) > options.maxLineBytes + 1) throw tooLong();
        const text = take(buffer.slice(start, end));
        yield { text, line };
        line++;
        start = end + 1;
      }
      if (start < bytesRead) {
        partBytes += bytesRead - start;
        if (partBytes > options.maxLineBytes + 1) throw tooLong();
        parts.push(buffer.slice(start, bytesRead));
      }
    }
    if (partBytes > 0) {
      yield { text: take(new Uint8Array(0)), line };
    }
  } finally {
    await handle.close().catch(() => undefined);
  }
}
