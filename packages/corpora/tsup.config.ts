import { libraryConfig } from '../../tsup.shared';

// `import.meta.url` (used to find the corpus packages) needs a shim in the CommonJS build.
export default libraryConfig({ shims: true });
