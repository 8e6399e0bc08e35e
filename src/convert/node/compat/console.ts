// node:console: util.format'ed lines on process.stdout / stderr.
import { format, inspect } from 'util';
import { process } from './process.js';

let indent = '';
const counts = new Map<string, number>();
const timers = new Map<string, number>();

function out(stream: 'stdout' | 'stderr', args: unknown[]): void {
  const text = format(...args);
  process[stream].write((indent ? text.replace(/^/gm, indent) : text) + '\n');
}

export const console = {
  log: (...args: unknown[]): void => out('stdout', args),
  info: (...args: unknown[]): void => out('stdout', args),
  debug: (...args: unknown[]): void => out('stdout', args),
  error: (...args: unknown[]): void => out('stderr', args),
  warn: (...args: unknown[]): void => out('stderr', args),
  trace: (...args: unknown[]): void => out('stderr', ['Trace:', ...args, '\n' + (new Error().stack ?? '')]),
  dir: (obj: unknown, options?: object): void => {
    process.stdout.write(inspect(obj, options) + '\n');
  },
  table: (data: unknown): void => out('stdout', [data]),
  assert: (cond: unknown, ...args: unknown[]): void => {
    if (!cond) out('stderr', ['Assertion failed' + (args.length ? ':' : ''), ...args]);
  },
  count: (label = 'default'): void => {
    const n = (counts.get(label) ?? 0) + 1;
    counts.set(label, n);
    out('stdout', [`${label}: ${n}`]);
  },
  countReset: (label = 'default'): void => {
    counts.delete(label);
  },
  group: (...args: unknown[]): void => {
    if (args.length) out('stdout', args);
    indent += '  ';
  },
  groupEnd: (): void => {
    indent = indent.slice(2);
  },
  time: (label = 'default'): void => {
    timers.set(label, Date.now());
  },
  timeEnd: (label = 'default'): void => {
    const t = timers.get(label);
    if (t !== undefined) out('stdout', [`${label}: ${Date.now() - t}ms`]);
    timers.delete(label);
  },
  timeLog: (label = 'default', ...args: unknown[]): void => {
    const t = timers.get(label);
    if (t !== undefined) out('stdout', [`${label}: ${Date.now() - t}ms`, ...args]);
  },
};
(console as Record<string, unknown>).groupCollapsed = console.group;

export default console;
