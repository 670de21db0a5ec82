import { defineConfig, mergeConfig } from 'vitest/config';
import shared from '../../vitest.shared';

// The examples' own checks: the recipes parse, the data scripts write what the recipes read.
export default mergeConfig(shared, defineConfig({ test: { include: ['*.test.ts'] } }));
