// node:perf_hooks: performance.now() over QuickJS's monotonic clock.
import { os } from './quickjs.js';

const origin = os.now();
export const performance = {
  timeOrigin: Date.now(),
  now: (): number => os.now() - origin,
  mark: (): void => {},
  measure: (): void => {},
};
export default { performance };
