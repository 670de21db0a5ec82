import { defineConfig, mergeConfig } from 'vitest/config';
import shared from '../../vitest.shared';

// The recipes' own checks live beside them (the recipes themselves run in @fineprune/cli's tests).
export default mergeConfig(shared, defineConfig({ test: { include: ['*.test.ts'] } }));
