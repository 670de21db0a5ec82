import { libraryConfig } from '../../tsup.shared';

// The main entry, and ./layers (which needs the optional peer @tensorflow/tfjs-layers).
export default libraryConfig({ entry: ['src/index.ts', 'src/layers.ts'] });
