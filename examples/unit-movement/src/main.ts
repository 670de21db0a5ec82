import { runUnitMovement } from './job';

const result = await runUnitMovement();
console.log(
  `${result.steps} steps; dense accuracy ${(result.denseAccuracy * 100).toFixed(2)}% after the warm-up`,
);
for (const row of result.units) console.log(`${row.name}: ${row.kept}/${row.count} ${row.kind}s remain`);
console.log(`pruned accuracy ${(result.prunedAccuracy * 100).toFixed(2)}%`);
