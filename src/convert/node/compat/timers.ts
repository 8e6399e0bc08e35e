// node:timers and node:timers/promises over the loop's Timeout and Immediate.
import { Immediate, Timeout } from './loop.js';

type Callback = (...args: unknown[]) => unknown;

function callable(fn: unknown): Callback {
  if (typeof fn !== 'function') {
    const err = new TypeError(`The "callback" argument must be of type function. Received ${typeof fn}`) as TypeError & { code: string };
    err.code = 'ERR_INVALID_ARG_TYPE';
    throw err;
  }
  return fn as Callback;
}

function delayOf(ms: unknown): number {
  const n = Number(ms);
  return Number.isFinite(n) && n >= 1 ? Math.min(n, 2 ** 31 - 1) : 1;
}

export function setTimeout(fn: unknown, ms?: unknown, ...args: unknown[]): Timeout {
  return new Timeout(callable(fn), delayOf(ms), args, false);
}

export function setInterval(fn: unknown, ms?: unknown, ...args: unknown[]): Timeout {
  return new Timeout(callable(fn), delayOf(ms), args, true);
}

export function setImmediate(fn: unknown, ...args: unknown[]): Immediate {
  return new Immediate(callable(fn), args);
}

export function clearTimeout(t: unknown): void {
  if (t instanceof Timeout) t.close();
}

export const clearInterval = clearTimeout;

export function clearImmediate(i: unknown): void {
  if (i instanceof Immediate) i.clear();
}

export const promises = {
  setTimeout<T>(ms?: number, value?: T): Promise<T | undefined> {
    return new Promise((resolve) => setTimeout(() => resolve(value), ms));
  },
  setImmediate<T>(value?: T): Promise<T | undefined> {
    return new Promise((resolve) => setImmediate(() => resolve(value)));
  },
  async *setInterval<T>(ms?: number, value?: T): AsyncGenerator<T | undefined> {
    for (;;) yield await promises.setTimeout(ms, value);
  },
};

export { Immediate, Timeout };
export default { setTimeout, setInterval, setImmediate, clearTimeout, clearInterval, clearImmediate, promises };
