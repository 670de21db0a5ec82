export { constant, type ConstantScheduleOptions } from './constant';
export { cubic, type CubicScheduleOptions } from './cubic';
export { scheduleFromConfig } from './from-config';
export { cubicThreshold, type CubicThresholdOptions, noTarget } from './threshold';
