import { describe, expect, it } from 'vitest';
import { createProgress } from './progress';
import type { RunEvent } from './run-types';

const step = (value: number): RunEvent => ({
  type: 'step',
  step: value,
  totalSteps: 10,
  loss: 1,
  taskLoss: 1,
  targets: { default: 0.5 },
  remaining: 0.5,
  learningRates: { weights: 0.001, scores: 0.01 },
  elapsedSeconds: value,
  etaSeconds: 10 - value,
});

describe('progress display', () => {
  it('redraws one line on a terminal with step, loss, sparsity, learning rates and ETA', () => {
    let text = '';
    const progress = createProgress(
      {
        isTTY: true,
        columns: 200,
        write: (chunk) => {
          text += chunk;
        },
      },
      { intervalMs: 0 },
    );
    progress.onEvent(step(5));
    progress.onEvent(step(10));
    progress.finish();
    expect(text).toContain('\r\u001b[2K[##########..........] step 5/10');
    expect(text).toMatch(
      /sparsity 50\.0% \(target 0\.500\)\s+lr 1\.0e-3\s+lr\(scores\) 1\.0e-2\s+0:05 eta 0:05/,
    );
    expect(text).toContain('step 10/10');
  });

  it('prints plain lines to a log, at most every interval, plus the last step', () => {
    const lines: string[] = [];
    const progress = createProgress(
      { isTTY: false, write: (chunk) => void lines.push(chunk) },
      { intervalMs: 60_000 },
    );
    for (let value = 1; value <= 10; value++) progress.onEvent(step(value));
    progress.onEvent({ type: 'interrupted', step: 10, checkpointDirectory: '/tmp/c' });
    expect(lines.filter((line) => line.startsWith('[')).length).toBe(2);
    expect(lines.at(-1)).toMatch(/interrupted at step 10; checkpoint written to \/tmp\/c/);
  });
});
