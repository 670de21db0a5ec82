// Sums the JSON reports that every package's `vitest run` wrote and prints one closing line,
// "Tests: N passed, N failed", so that CI logs end with the whole repository's count.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const folders = ['packages', 'examples'].flatMap((parent) =>
  existsSync(path.join(root, parent))
    ? readdirSync(path.join(root, parent)).map((name) => path.join(root, parent, name))
    : [],
);
folders.push(path.join(root, 'bench'));
let passed = 0;
let failed = 0;
let skipped = 0;
for (const folder of folders) {
  const file = path.join(folder, 'node_modules', '.vitest', 'report.json');
  if (!existsSync(file)) continue;
  const report = JSON.parse(readFileSync(file, 'utf8'));
  passed += report.numPassedTests ?? 0;
  failed += report.numFailedTests ?? 0;
  skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  console.log(
    `${path.relative(root, folder)}: ${report.numPassedTests} passed, ${report.numFailedTests} failed`,
  );
}
console.log(`Tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
