// @tensorflow/tfjs-core registers no gradient functions by itself (the @tensorflow/tfjs union
// package does). fineprune trains with tfjs-core alone, so it registers them here, once.
//
// It is also the public subpath `@fineprune/tensor/register-gradients`, for an application that
// trains with plain TF.js ops and imports only side-effect-free subpaths of this package.
//
// tfjs-core ships that registration only as extensionless ESM (`dist/register_all_gradients.js`),
// which Node cannot load, so tsup bundles it into dist (see tsup.config.ts); vitest inlines it.
// The bundled modules share the engine and registries through globalThis; `./tfjs-core-first`
// makes the installed tfjs-core create them first, also in the CJS build.
import './tfjs-core-first';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
