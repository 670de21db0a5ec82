#!/usr/bin/env node
import { main } from './cli';

let interrupts = 0;
void main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  onInterrupt(handler) {
    const listener = () => {
      interrupts += 1;
      // A second Ctrl-C exits at once; checkpoints are written atomically, so none is left half-written.
      if (interrupts > 1) process.exit(130);
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
}).then((code) => {
  process.exitCode = code;
});
