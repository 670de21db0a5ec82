/**
 * `@fineprune/criteria`: saliency criteria from loss modelling (MP, OBD, LM, QM, random, GraSP,
 * SynFlow) as score strategies measured on data, the Gauss–Newton diagonal of the softmax
 * cross-entropy, the λ step-size penalty, pruning in π stages, and Algorithm 1 of *Revisiting Loss
 * Modelling for Unstructured Pruning*.
 *
 * @packageDocumentation
 */

export {
  CRITERIA,
  type CriterionDefinition,
  type CriterionId,
  type CriterionOptions,
  type CurvatureCriterionOptions,
  criterionFromConfig,
  defineCriterion,
  grasp,
  linearModel,
  type MagnitudeCriterionOptions,
  magnitudeCriterion,
  optimalBrainDamage,
  quadraticModel,
  type RandomCriterionOptions,
  randomCriterion,
  type SaliencyCriterion,
  type SaliencyInput,
  synflow,
} from './criteria';
export {
  type DenseHookModel,
  type DenseNetwork,
  type DenseNetworkOptions,
  type DenseProduct,
  denseNetwork,
  isDenseHookModel,
} from './dense-network';
export {
  type ModelSnapshot,
  meanStd,
  type PruningFrameworkOptions,
  type PruningFrameworkReport,
  pruningFramework,
  snapshot,
  spearman,
  type TrainOptions,
  trainSteps,
} from './framework';
export {
  type GaussNewtonMethod,
  type MeasureOptions,
  type MeasurementNeeds,
  type Measurements,
  measure,
} from './measure';
export {
  lossOn,
  pruneInStages,
  type StagedPruningOptions,
  type StagedPruningResult,
  type StageReport,
} from './staged-pruning';
export {
  type StageSchedule,
  type StageScheduleKind,
  type StageScheduleOptions,
  stageSchedule,
} from './stages';
