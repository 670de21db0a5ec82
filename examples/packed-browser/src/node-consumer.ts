/**
 * A Node program that uses the installed tarballs. The test bundles it twice with the packages left
 * external, as an ES module (`import`) and as CommonJS (`require`), and runs both:
 *
 *   node consumer.mjs wasm   |   node consumer.cjs wasm
 *
 * It prints the pruning report as one line of JSON.
 */
import { setBackend } from '@fineprune/tensor';
import { runPruning } from './pruning';

async function main(): Promise<void> {
  const selection = await setBackend(process.argv[2] ?? 'wasm');
  const report = await runPruning();
  console.log(JSON.stringify({ ...report, selected: selection.backend }));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
