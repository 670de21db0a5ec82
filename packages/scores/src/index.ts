export { magnitude } from './magnitude';
export { movement, type MovementOptions } from './movement';
export { l0, L0_DEFAULT_INIT, type L0Options } from './l0';
export { checkScoreInit, createScoreVariable, fanIn, type ScoreInit } from './init';
export { scoresFromConfig } from './from-config';
