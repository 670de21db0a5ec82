// Evaluated before the bundled gradient modules (see register-gradients.ts): the installed
// @tensorflow/tfjs-core creates the global engine and environment, the bundled copy reuses them.
import '@tensorflow/tfjs-core';
