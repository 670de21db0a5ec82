import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SOURCE = fileURLToPath(new URL('.', import.meta.url));

/** The package's own modules each module imports (type-only imports included), by file name. */
function importGraph(): Map<string, string[]> {
  const files = readdirSync(SOURCE).filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts'));
  return new Map(
    files.map((file) => {
      const text = readFileSync(`${SOURCE}/${file}`, 'utf8');
      const targets = [...text.matchAll(/\bfrom\s+'\.\/([\w-]+)'/g)].map((match) => `${match[1]}.ts`);
      return [file, targets.filter((target) => files.includes(target))];
    }),
  );
}

/** Every cycle, as the path of files that closes it. */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const visit = (file: string, path: string[]) => {
    for (const next of graph.get(file) ?? []) {
      const at = path.indexOf(next);
      if (at >= 0) found.push([...path.slice(at), next]);
      else visit(next, [...path, next]);
    }
  };
  for (const file of graph.keys()) visit(file, [file]);
  return found;
}

describe('@fineprune/text modules', () => {
  it('import each other without a cycle (type-only imports count)', () => {
    const graph = importGraph();
    expect(graph.get('encode.ts')).toContain('batch-types.ts');
    expect(cycles(graph)).toEqual([]);
  });
});
