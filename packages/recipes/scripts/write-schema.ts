// Writes schema.json from the recipe schema: `pnpm --filter @fineprune/recipes schema`.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { recipeJsonSchema } from '../src/json-schema';

const target = fileURLToPath(new URL('../schema.json', import.meta.url));
writeFileSync(target, `${JSON.stringify(recipeJsonSchema(), null, 2)}\n`);
console.log(`wrote ${target}`);
