import { libraryConfig } from '../../tsup.shared';

export default libraryConfig({
  entry: ['src/index.ts', 'src/bin.ts'],
  // version.ts reads import.meta.url only in the ESM build; the CommonJS build uses __filename.
  esbuildOptions(options) {
    options.logOverride = { ...options.logOverride, 'empty-import-meta': 'silent' };
  },
});
