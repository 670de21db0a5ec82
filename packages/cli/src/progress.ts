import type { RunEvent } from './run-types';

function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const whole = Math.max(0, Math.round(seconds));
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const rest = String(whole % 60).padStart(2, '0');
  return hours ? `${hours}:${String(minutes).padStart(2, '0')}:${rest}` : `${minutes}:${rest}`;
}

/**
 * Where progress goes: a terminal (one line redrawn in place) or a log (a line every few seconds).
 *
 * @example
 * ```ts
 * const output: ProgressOutput = process.stderr;
 * ```
 */
export interface ProgressOutput {
  write(text: string): void;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

/**
 * A small progress renderer for `fineprune run`: on a terminal one line redrawn at most 10 times a
 * second (bar, step, loss, sparsity or targets, learning rates, elapsed, ETA); elsewhere a plain line
 * every 10 seconds. Evaluations, checkpoints and the end are printed on their own lines.
 *
 * @example
 * ```ts
 * const progress = createProgress(process.stderr);
 * await runRecipe({ recipe, baseDirectory: '.', onEvent: progress.onEvent });
 * progress.finish();
 * ```
 */
export function createProgress(output: ProgressOutput, options: { intervalMs?: number } = {}) {
  const interactive = output.isTTY === true;
  const interval = options.intervalMs ?? (interactive ? 100 : 10_000);
  let lastDraw = 0;
  let smoothed = Number.NaN;
  let live = false;
  const clear = () => {
    if (live) output.write('\r\u001b[2K');
    live = false;
  };
  const line = (text: string) => {
    clear();
    output.write(`${text}\n`);
  };
  return {
    onEvent(event: RunEvent): void {
      switch (event.type) {
        case 'start':
          line(
            `${event.resumed ? 'resuming' : 'running'} ${event.name} on ${event.backend}: step ${event.startStep}/${event.totalSteps}, ${event.parameters} pruned parameters`,
          );
          return;
        case 'step': {
          smoothed = Number.isNaN(smoothed) ? event.loss : 0.95 * smoothed + 0.05 * event.loss;
          const now = Date.now();
          const last = event.step === event.totalSteps;
          if (!last && now - lastDraw < interval) return;
          lastDraw = now;
          const width = 20;
          const filled = Math.round((event.step / event.totalSteps) * width);
          const targets = Object.entries(event.targets)
            .map(([group, value]) =>
              Object.keys(event.targets).length > 1
                ? `${group} ${value.toPrecision(3)}`
                : value.toPrecision(3),
            )
            .join(' ');
          const rates = Object.entries(event.learningRates)
            .map(
              ([group, value]) => `${group === 'weights' ? 'lr' : `lr(${group})`} ${value.toExponential(1)}`,
            )
            .join('  ');
          const text =
            `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] step ${event.step}/${event.totalSteps}` +
            `  loss ${smoothed.toFixed(4)}  sparsity ${((1 - event.remaining) * 100).toFixed(1)}% (target ${targets})` +
            `  ${rates}  ${clock(event.elapsedSeconds)} eta ${clock(event.etaSeconds)}`;
          if (interactive) {
            const columns = output.columns ?? 160;
            output.write(`\r\u001b[2K${text.slice(0, Math.max(20, columns - 1))}`);
            live = true;
          } else {
            output.write(`${text}\n`);
          }
          return;
        }
        case 'evaluate':
          line(
            `${event.dense ? 'dense baseline' : 'evaluation'} at step ${event.point.step}: accuracy ${(event.point.accuracy * 100).toFixed(2)}%, loss ${event.point.loss.toFixed(4)}, remaining ${(event.point.remaining * 100).toFixed(2)}%`,
          );
          return;
        case 'checkpoint':
          if (!interactive) line(`checkpoint at step ${event.step}: ${event.directory}`);
          return;
        case 'interrupted':
          line(
            `interrupted at step ${event.step}; checkpoint written to ${event.checkpointDirectory} (resume with --resume)`,
          );
          return;
        case 'done':
          line(`finished ${event.record.steps} steps; results in ${event.outputDirectory}`);
          return;
      }
    },
    finish(): void {
      clear();
    },
  };
}
