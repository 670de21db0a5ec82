export { keptCount, topV, type TopVOptions } from './top-v';
