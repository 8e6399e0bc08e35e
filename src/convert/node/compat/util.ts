// node:util: the `util` package from npm, with parseArgs (@pkgjs/parseargs), TextEncoder/TextDecoder and the
// newer helpers CLI programs reach for.
import util from 'util/util.js';
import { parseArgs } from '@pkgjs/parseargs';
import { TextDecoder, TextEncoder } from './text.js';

export const { format, inspect, inherits, promisify, callbackify, deprecate, debuglog, isDeepStrictEqual, types } = util;
export const formatWithOptions = (_options: object, ...args: unknown[]): string => util.format(...(args as [unknown, ...unknown[]]));
export const stripVTControlCharacters = (s: string): string => s.replace(/\u001b\[[0-9;]*[A-Za-z]/g, '');
export const styleText = (_format: string | string[], text: string): string => text;
export const toUSVString = (s: string): string => s.replace(/[\ud800-\udfff]/g, '\ufffd');
export const isArray = Array.isArray;
export { parseArgs, TextDecoder, TextEncoder };
export default { ...util, formatWithOptions, stripVTControlCharacters, styleText, toUSVString, parseArgs, TextDecoder, TextEncoder, isArray };
