// Built-in modules a Box cannot provide (sockets, child processes, threads, …): importing one works, so
// libraries that only mention it load; calling into it throws, naming what the program needed.
import { codedError } from './errors.js';

const PASS = new Set(['__esModule', 'then', 'default', Symbol.toPrimitive, Symbol.toStringTag, 'constructor', 'prototype']);

export function unsupportedModule(name: string, need: string): object {
  const fail = (prop: string): never => {
    throw codedError('ERR_BOXPROXY_UNSUPPORTED', `node:${name}${prop ? `.${prop}` : ''} is not available in a WebAssembly Box (it needs ${need}, which WASI preview1 does not have)`);
  };
  const target = function unsupported(): never {
    return fail('');
  };
  return new Proxy(target, {
    get(t, prop) {
      if (PASS.has(prop)) return prop === 'default' ? t : undefined;
      if (typeof prop === 'symbol') return undefined;
      return () => fail(prop);
    },
    apply: () => fail(''),
    construct: () => fail(''),
  });
}
