// node:module and the runtime `require`: what the bundle could not resolve when the Box was made (require() of
// a computed name, createRequire) is resolved here, the way Node does: built-ins, then relative and absolute
// paths (.js, .json, index files, package.json "main"/"exports"), then node_modules folders up from the caller
// and the global folders.
import { config } from './config.js';
import { codedError } from './errors.js';
import { existsSync, readFileSync, statSync } from './fs.js';
import { dirname, join, resolve as resolvePath } from './path.js';

type Exports = unknown;
interface Module {
  id: string;
  filename: string;
  exports: Exports;
  loaded: boolean;
  paths: string[];
  children: Module[];
  parent: Module | null;
  require: Require;
}
export interface Require {
  (name: string): Exports;
  resolve: ((name: string) => string) & { paths(name: string): string[] | null };
  cache: Record<string, Module>;
  main: Module | undefined;
}

const builtins = new Map<string, () => Exports>();
const cache: Record<string, Module> = {};

/** Registers a built-in module (the prologue does, for every module the layer has). */
export function registerBuiltin(name: string, load: () => Exports): void {
  builtins.set(name, load);
}

export function isBuiltin(name: string): boolean {
  return builtins.has(name.replace(/^node:/, ''));
}

export const builtinModules: string[] = [];

function isFile(p: string): boolean {
  return statSync(p, { throwIfNoEntry: false })?.isFile() ?? false;
}

function isDir(p: string): boolean {
  return statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

function asFile(p: string): string | undefined {
  for (const candidate of [p, `${p}.js`, `${p}.json`, `${p}.node`]) if (isFile(candidate)) return candidate;
  return undefined;
}

function readPackage(dir: string): { main?: string; exports?: unknown } | undefined {
  const file = join(dir, 'package.json');
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8') as string) as { main?: string; exports?: unknown };
}

/** A conditional "exports" target for require(): "node", "require", "default". */
function exportTarget(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    for (const v of value) {
      const t = exportTarget(v);
      if (t) return t;
    }
    return undefined;
  }
  if (value && typeof value === 'object') {
    for (const [cond, v] of Object.entries(value)) if (cond === 'node' || cond === 'require' || cond === 'default') return exportTarget(v);
  }
  return undefined;
}

function asDirectory(p: string): string | undefined {
  if (!isDir(p)) return undefined;
  const main = readPackage(p)?.main;
  if (main) {
    const hit = asFile(join(p, main)) ?? asFile(join(p, main, 'index'));
    if (hit) return hit;
  }
  return asFile(join(p, 'index'));
}

function fromPackage(pkgDir: string, subpath: string): string | undefined {
  const pkg = readPackage(pkgDir);
  if (pkg?.exports !== undefined) {
    const exportsField = pkg.exports as Record<string, unknown> | string;
    const key = subpath ? `./${subpath}` : '.';
    const entry = typeof exportsField === 'string' || Array.isArray(exportsField) || !Object.keys(exportsField).some((k) => k.startsWith('.'))
      ? key === '.' ? exportsField : undefined
      : exportsField[key];
    const target = exportTarget(entry);
    if (target) return asFile(join(pkgDir, target));
  }
  const p = join(pkgDir, subpath);
  return asFile(p) ?? asDirectory(p);
}

function nodeModulesPaths(from: string): string[] {
  const out: string[] = [];
  for (let dir = from; ; dir = dirname(dir)) {
    if (!dir.endsWith('/node_modules')) out.push(join(dir, 'node_modules'));
    if (dir === '/') break;
  }
  return [...out, ...config.globalPaths];
}

export function resolveFilename(name: string, fromDir: string): string {
  if (isBuiltin(name)) return name.replace(/^node:/, '');
  let hit: string | undefined;
  if (name.startsWith('./') || name.startsWith('../') || name.startsWith('/') || name === '.' || name === '..') {
    const p = resolvePath(fromDir, name);
    hit = asFile(p) ?? asDirectory(p);
  } else {
    const parts = name.split('/');
    const pkgName = name.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string);
    const subpath = parts.slice(name.startsWith('@') ? 2 : 1).join('/');
    for (const dir of nodeModulesPaths(fromDir)) {
      if (!isDir(join(dir, pkgName))) continue;
      hit = fromPackage(join(dir, pkgName), subpath);
      if (hit) break;
    }
  }
  if (!hit) {
    const err = codedError('MODULE_NOT_FOUND', `Cannot find module '${name}'\nRequire stack:\n- ${fromDir}`);
    throw err;
  }
  return hit;
}

function load(filename: string, parent: Module | null): Exports {
  if (builtins.has(filename)) return (builtins.get(filename) as () => Exports)();
  const cached = cache[filename];
  if (cached) return cached.exports;
  if (filename.endsWith('.node')) {
    throw codedError('ERR_DLOPEN_FAILED', `${filename}: native addons (.node) cannot be loaded in a WebAssembly Box`);
  }
  const module: Module = {
    id: filename,
    filename,
    exports: {},
    loaded: false,
    paths: nodeModulesPaths(dirname(filename)),
    children: [],
    parent,
    require: makeRequire(filename),
  };
  cache[filename] = module;
  parent?.children.push(module);
  try {
    const source = readFileSync(filename, 'utf8') as string;
    if (filename.endsWith('.json')) module.exports = JSON.parse(source) as Exports;
    else {
      const body = source.replace(/^#!.*/, '');
      // Indirect eval: global scope, like Node's module wrapper.
      const wrapper = (0, eval)(`(function (exports, require, module, __filename, __dirname) {${body}\n})`) as (...a: unknown[]) => void;
      wrapper.call(module.exports, module.exports, module.require, module, filename, dirname(filename));
    }
  } catch (err) {
    delete cache[filename];
    throw err;
  }
  module.loaded = true;
  return module.exports;
}

/** A `require` resolving relative to `filename` (a file path or a directory ending in "/"). */
export function makeRequire(filename: string, parent: Module | null = null): Require {
  const dir = filename.endsWith('/') ? filename.replace(/(.)\/$/, '$1') : dirname(filename);
  const require = ((name: string) => load(resolveFilename(name, dir), parent)) as Require;
  require.resolve = Object.assign((name: string) => resolveFilename(name, dir), {
    paths: (name: string): string[] | null => (isBuiltin(name) ? null : nodeModulesPaths(dir)),
  });
  require.cache = cache;
  require.main = undefined;
  return require;
}

export function createRequire(filename: string | URL): Require {
  const path = typeof filename === 'string' ? filename.replace(/^file:\/\//, '') : decodeURIComponent(filename.pathname);
  return makeRequire(path);
}

export const Module = { createRequire, builtinModules, isBuiltin, _cache: cache };
export default { createRequire, builtinModules, isBuiltin, Module };
