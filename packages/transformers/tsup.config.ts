import { libraryConfig } from '../../tsup.shared';

export default libraryConfig({ entry: ['src/index.ts', 'src/node.ts'] });
