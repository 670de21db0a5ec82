export { magnitude } from './magnitude';
