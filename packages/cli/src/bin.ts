#!/usr/bin/env node
import { main } from './cli';
import { ExitCodes } from './exit-codes';

/** How long the process may linger after the command finished (open handles of a plugin) before it is ended. */
const LINGER_MS = 5_000;

let interrupts = 0;
let finished = false;
// Until the command finishes, a process that ends (its event loop empty while a promise is still
// pending, such as a plugin's that never settles) must not report success.
process.exitCode = ExitCodes.INTERNAL;
process.on('exit', () => {
  if (!finished) {
    process.stderr.write(
      'internal error: fineprune stopped before the command finished: something it waited for never settled (a plugin package or hook?). Nothing was completed.\n',
    );
    process.exitCode = ExitCodes.INTERNAL;
  }
});

main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  onInterrupt(handler) {
    const listener = () => {
      interrupts += 1;
      // A second Ctrl-C exits at once; checkpoints are written atomically, so none is left half-written.
      if (interrupts > 1) {
        finished = true;
        process.exit(ExitCodes.INTERRUPTED);
      }
      process.stderr.write(
        '\ninterrupt: finishing the current step and writing a checkpoint (Ctrl-C again to quit now)\n',
      );
      handler();
    };
    process.on('SIGINT', listener);
    process.on('SIGTERM', listener);
    return () => {
      process.off('SIGINT', listener);
      process.off('SIGTERM', listener);
    };
  },
}).then(
  (code) => {
    finished = true;
    process.exitCode = code;
    // A plugin may leave a timer or socket open; end the process anyway once output has drained.
    setTimeout(() => process.exit(code), LINGER_MS).unref();
  },
  (error: unknown) => {
    finished = true;
    process.stderr.write(
      `internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = ExitCodes.INTERNAL;
  },
);
