import type { RunRecord, ShrinkRecord } from '../run-record';
import { escapeHtml } from './svg';

/** "2.46× smaller" for a before / after pair. */
function ratio(before: number, after: number): string {
  return `${(before / Math.max(1, after)).toFixed(2)}× smaller`;
}

/**
 * The text lines of a shrinking export: the units each structure kept, the structures left whole,
 * and the parameters and float32 bytes before and after.
 *
 * @example
 * ```ts
 * process.stdout.write(shrinkLines(summary.shrink)); // "shrunk: 266,610 → 108,330 parameters …"
 * ```
 */
export function shrinkLines(record: ShrinkRecord): string {
  const lines = [
    `shrunk: ${record.parametersBefore} → ${record.parametersAfter} parameters, ${record.bytesBefore} → ${record.bytesAfter} bytes as float32 (${ratio(record.bytesBefore, record.bytesAfter)})`,
    ...record.structures.map((row) => `  ${row.name} (${row.kind}s): kept ${row.kept} of ${row.count}`),
    ...record.skipped.map((entry) => `  ${entry.layer}: not shrunk, ${entry.reason}`),
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * The report's section on a shrinking export (`export.shrink`): units kept per structure, the
 * layers left whole and the sizes before and after; '' for runs that did not shrink.
 *
 * @example
 * ```ts
 * const html = shrinkSection(record);
 * ```
 */
export function shrinkSection(run: RunRecord): string {
  const record = run.shrink;
  if (!record || !Array.isArray(record.structures)) return '';
  const rows = record.structures
    .map(
      (row) =>
        `<tr><td>${escapeHtml(String(row.name))}</td><td>${escapeHtml(String(row.kind))}</td><td class="number">${Number(row.kept)}</td><td class="number">${Number(row.count)}</td></tr>`,
    )
    .join('');
  const skipped = (Array.isArray(record.skipped) ? record.skipped : [])
    .map((entry) => `<li>${escapeHtml(String(entry.layer))}: ${escapeHtml(String(entry.reason))}</li>`)
    .join('');
  const before = Number(record.bytesBefore);
  const after = Number(record.bytesAfter);
  return `<h2>Shrunk model</h2><p class="caption">The exported model without its pruned units: ${Number(record.parametersBefore)} → ${Number(record.parametersAfter)} parameters, ${before} → ${after} bytes as float32 (${ratio(before, after)}).</p><table data-table="shrink"><thead><tr><th>structure</th><th>kind</th><th>kept</th><th>before</th></tr></thead><tbody>${rows}</tbody></table>${skipped ? `<p class="caption">Left whole:</p><ul>${skipped}</ul>` : ''}`;
}
