export { keptCount, topV, type TopVOptions } from './top-v';
export { float32SigmoidCut, type SigmoidComparison } from './sigmoid-cut';
export {
  checkPenalty,
  type PenaltyReduction,
  reducePenalty,
  sigmoidPenalty,
  type SigmoidPenaltyOptions,
  threshold,
  type ThresholdOptions,
} from './threshold';
export {
  checkHardConcrete,
  expectedL0,
  hardConcrete,
  hardConcreteGate,
  type HardConcreteOptions,
  type HardConcreteParameters,
  hardConcreteTestMask,
  l0Penalty,
  type L0PenaltyOptions,
  uniformNoise,
} from './hard-concrete';
export { nOfM, type NOfMOptions } from './n-of-m';
export { block, type BlockOptions, type BlockPool } from './block';
export { lossTermFromConfig, maskFromConfig } from './from-config';
