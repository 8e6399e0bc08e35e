// node:util: the `util` package from npm, with parseArgs (@pkgjs/parseargs), TextEncoder/TextDecoder and the
// newer helpers CLI programs reach for.
import util from 'util/util.js';
import { TextDecoder, TextEncoder } from './text.js';

export const { inspect, inherits, promisify, callbackify, deprecate, debuglog, types } = util;

/** npm's util predates isDeepStrictEqual: npm's assert decides it (loaded when first asked: esbuild's lazy init). */
export function isDeepStrictEqual(a: unknown, b: unknown): boolean {
  try {
    (require('./assert.js') as { default: { deepStrictEqual(a: unknown, b: unknown): void } }).default.deepStrictEqual(a, b);
    return true;
  } catch {
    return false;
  }
}

function formatNumber(n: number): string {
  return Object.is(n, -0) ? '-0' : `${n}`;
}

function stringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? 'undefined';
  } catch {
    return '[Circular]';
  }
}

/** One `%x` conversion of Node's util.format; undefined for an unknown letter (kept as written). */
function convert(letter: string, arg: unknown, options: object): string | undefined {
  switch (letter) {
    case 's':
      if (typeof arg === 'number') return formatNumber(arg);
      if (typeof arg === 'bigint') return `${arg}n`;
      if (typeof arg !== 'object' || arg === null) return String(arg);
      return inspect(arg, { ...options, depth: 0 });
    case 'j':
      return stringify(arg);
    case 'd':
    case 'i':
    case 'f':
      if (typeof arg === 'bigint') return letter === 'f' ? formatNumber(Number(arg)) : `${arg}n`;
      if (typeof arg === 'symbol') return 'NaN';
      return formatNumber(letter === 'd' ? Number(arg) : letter === 'i' ? Number.parseInt(String(arg)) : Number.parseFloat(String(arg)));
    case 'O':
      return inspect(arg, options);
    case 'o':
      return inspect(arg, { ...options, showHidden: true, depth: 4 });
    case 'c':
      return '';
    default:
      return undefined;
  }
}

/** Node's util.formatWithOptions: printf-like conversions in a leading string, then the rest, strings as they are. */
export function formatWithOptions(options: object, ...args: unknown[]): string {
  let out = '';
  let next = 0;
  const first = args[0];
  if (typeof first === 'string') {
    if (args.length === 1) return first;
    next = 1;
    for (let i = 0; i < first.length; i++) {
      const c = first[i] as string;
      if (c !== '%' || i === first.length - 1) {
        out += c;
        continue;
      }
      const letter = first[i + 1] as string;
      if (letter === '%') {
        out += '%';
        i++;
      } else if (next < args.length) {
        const converted = convert(letter, args[next], options);
        if (converted === undefined) out += c;
        else {
          out += converted;
          next++;
          i++;
        }
      } else out += c;
    }
  }
  for (let join = next > 0; next < args.length; next++, join = true) {
    const value = args[next];
    out += (join ? ' ' : '') + (typeof value === 'string' ? value : typeof value === 'number' ? formatNumber(value) : inspect(value, options));
  }
  return out;
}

export function format(...args: unknown[]): string {
  return formatWithOptions({}, ...args);
}
export const stripVTControlCharacters = (s: string): string => s.replace(/\u001b\[[0-9;]*[A-Za-z]/g, '');
export const styleText = (_format: string | string[], text: string): string => text;
export const toUSVString = (s: string): string => s.replace(/[\ud800-\udfff]/g, '\ufffd');
export const isArray = Array.isArray;
/** @pkgjs/parseargs, loaded when first called. */
export function parseArgs(config?: Parameters<typeof import('node:util').parseArgs>[0]): ReturnType<typeof import('node:util').parseArgs> {
  return (require('@pkgjs/parseargs') as typeof import('node:util')).parseArgs(config);
}
export { TextDecoder, TextEncoder };
export default { ...util, format, formatWithOptions, isDeepStrictEqual, stripVTControlCharacters, styleText, toUSVString, parseArgs, TextDecoder, TextEncoder, isArray };
