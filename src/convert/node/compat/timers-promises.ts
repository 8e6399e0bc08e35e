// node:timers/promises.
import { promises } from './timers.js';
export const { setTimeout, setImmediate, setInterval } = promises;
export default promises;
