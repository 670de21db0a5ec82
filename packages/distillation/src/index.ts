export { checkOutputPairs, checkTemperature, distillationLoss } from './loss';
export {
  type DistillationConfig,
  type DistillationOptions,
  type DistillationTerm,
  distillation,
  distillationFromConfig,
  type Teacher,
  type TeacherFunction,
} from './distillation';
