// node:path (POSIX): the `path-browserify` package from npm (Node's own path module, as of Node 10).
import path from 'path-browserify';

const posix = path as typeof path & { posix: typeof path; toNamespacedPath(p: string): string };
posix.posix = posix;
posix.toNamespacedPath ??= (p: string): string => p;

export const { sep, delimiter, basename, dirname, extname, format, isAbsolute, join, normalize, parse, relative, resolve } = posix;
export { posix };
export default posix;
