export { unitTopV, type UnitTopVOptions } from './unit-top-v';
export { unitThreshold, type UnitThresholdOptions } from './unit-threshold';
export { unitMagnitude, type UnitMagnitudeOptions, unitNorms } from './unit-magnitude';
export { unitMovement, type UnitMovementOptions } from './unit-movement';
export { blockMovement, type BlockMovementOptions } from './block-movement';
export { unitSigmoidPenalty, type UnitSigmoidPenaltyOptions } from './unit-sigmoid-penalty';
export { checkGroupScoreInit, type GroupScoreInit } from './score-init';
export { masksFromWeightScores, pooledUnitInputs } from './pooled-units';
export { structuredFromConfig } from './from-config';
