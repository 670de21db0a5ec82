export { ErrorCodes, FinepruneError, check } from '@fineprune/tensor';
export type { FinepruneErrorCode, FinepruneErrorOptions } from '@fineprune/tensor';
export * from './types';
export * from './parameter';
export * from './optimizers';
export * from './plugin-driver';
export * from './pruner';
export * from './divergence-guard';
export * from './report';
