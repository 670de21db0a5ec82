export { ErrorCodes, FinepruneError, check } from '@fineprune/tensor/errors';
export type { FinepruneErrorCode, FinepruneErrorOptions } from '@fineprune/tensor/errors';
export * from './types';
export * from './parameter';
export * from './optimizers';
export * from './plugin-driver';
export * from './pruner';
export * from './report';
