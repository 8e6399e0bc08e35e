// Bundles a Node app for a Box with esbuild: the app's files (exported from the image into a scratch tree), its
// node_modules, and the Node layer (compat/, with npm's buffer/events/path/util), into one script QuickJS runs.
// App files live in esbuild's "image" namespace under their image paths and the layer under paths relative to
// boxproxy's package root, so the bundle's bytes do not depend on where the conversion ran.
import { build, type Plugin, type PluginBuild } from 'esbuild';
import { access, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NodeBoxConfig } from './compat/config.js';
import { builtinName, missingReason, NPM_PACKAGE, PROVIDED } from './builtins.js';
import type { Inode, VirtualFs } from '../vfs.js';

export interface BundleInput {
  fs: VirtualFs;
  readFile(inode: Inode): Promise<Buffer>;
  /** Scratch directory (the conversion's work dir). */
  workDir: string;
  /** The entry script's image path (symlinks resolved). */
  entry: string;
  /** Modules the image preloads (`node -r x`): image paths or package names. */
  preloads: string[];
  /** Image directories to export for esbuild (the app, node_modules folders, NODE_PATH). */
  roots: string[];
  /** NODE_PATH folders (image paths). */
  nodePaths: string[];
  config: NodeBoxConfig;
  /** Export at most this many bytes of image files. */
  maxBytes?: number;
}

export type BundleResult =
  | { ok: true; file: string; format: 'iife' | 'esm'; bytes: number; inputs: number; notes: string[] }
  | { ok: false; reason: string };

const DEFAULT_MAX_BYTES = 1024 * 1024 * 1024;
/** npm packages whose job is loading a native addon: reaching one means the app needs .node code. */
const NATIVE_LOADERS = new Set(['bindings', 'node-gyp-build', 'node-gyp-build-optional-packages', 'prebuild-install', 'node-pre-gyp', '@mapbox/node-pre-gyp', 'nan']);

/** boxproxy's package root (holds node_modules/ and src/convert/node/compat/). */
async function packageRoot(): Promise<string> {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      await access(join(dir, 'src', 'convert', 'node', 'compat', 'prologue.ts'));
      await access(join(dir, 'node_modules'));
      return dir;
    } catch {
      const up = dirname(dir);
      if (up === dir) throw new Error(`src/convert/node/compat/prologue.ts not found above ${fileURLToPath(import.meta.url)}`);
      dir = up;
    }
  }
}

/** Writes the image subtree at `root` under `dest` (symlinks kept, pointed inside `dest`); returns bytes written. */
async function exportTree(input: BundleInput, dest: string, root: string, budget: { left: number }): Promise<void> {
  const hit = input.fs.resolve(root);
  if (!hit.ok) return;
  const walk = async (path: string): Promise<void> => {
    const node = input.fs.get(path.split('/').filter(Boolean));
    if (!node) return;
    const host = join(dest, path);
    if (node.type === 'dir') {
      await mkdir(host, { recursive: true });
      for (const name of [...node.children.keys()].sort()) await walk(posix.join(path, name));
    } else if (node.type === 'symlink') {
      await mkdir(dirname(host), { recursive: true });
      const target = node.target.startsWith('/') ? relative(dirname(host), join(dest, node.target)) || '.' : node.target;
      await symlink(target, host).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
    } else {
      await mkdir(dirname(host), { recursive: true });
      budget.left -= node.inode.size;
      if (budget.left < 0) throw new Error('budget');
      // Dropped files (native code) stay as empty placeholders: resolution still sees them.
      await writeFile(host, node.inode.content ? await input.readFile(node.inode) : Buffer.alloc(0), { flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
    }
  };
  await walk(hit.path);
}

/** Node's module format for a file: .mjs/.cjs, else the nearest package.json "type". */
async function isEsmFile(hostPath: string, stopAt: string): Promise<boolean> {
  if (hostPath.endsWith('.mjs')) return true;
  if (hostPath.endsWith('.cjs')) return false;
  for (let dir = dirname(hostPath); dir.startsWith(stopAt); dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { type?: string };
      return pkg.type === 'module';
    } catch {
      if (dir === stopAt) break;
    }
  }
  return false;
}

const ESM_SYNTAX = /^\s*(import\s*[\w{*'"]|export\s+[\w{*]|export\s+default\b)/m;

/**
 * What a file sees in Node but not in one bundle: its own __filename/__dirname and import.meta, and, for the
 * entry, `require.main === module`.
 */
export function rewriteModuleMeta(source: string, imagePath: string, opts: { esm: boolean; entry: boolean }): string {
  const dir = posix.dirname(imagePath);
  let out = source
    .replace(/\bimport\.meta\.url\b/g, JSON.stringify(`file://${encodeURI(imagePath)}`))
    .replace(/\bimport\.meta\.filename\b/g, JSON.stringify(imagePath))
    .replace(/\bimport\.meta\.dirname\b/g, JSON.stringify(dir));
  const esm = opts.esm || ESM_SYNTAX.test(source);
  if (!esm) {
    if (opts.entry) out = out.replace(/\brequire\.main\b/g, 'module');
    const declares = (name: string): boolean => new RegExp(`\\b(var|let|const|function)\\s+${name}\\b`).test(source);
    const lines: string[] = [];
    if (/\b__filename\b/.test(source) && !declares('__filename')) lines.push(`var __filename = ${JSON.stringify(imagePath)};`);
    if (/\b__dirname\b/.test(source) && !declares('__dirname')) lines.push(`var __dirname = ${JSON.stringify(dir)};`);
    // On the shebang's line or before the code, so line numbers stay those of the file.
    if (lines.length > 0) out = out.startsWith('#!') ? out.replace(/^#!.*/, lines.join(' ')) : lines.join(' ') + out;
  }
  return out;
}

interface Findings {
  /** Built-ins the Box cannot provide -> image files importing them. */
  missing: Map<string, Set<string>>;
  /** Native addons (.node files, loader packages) -> importing image files. */
  native: Map<string, Set<string>>;
}

function note(map: Map<string, Set<string>>, key: string, importer: string): void {
  const set = map.get(key) ?? new Set<string>();
  set.add(importer);
  map.set(key, set);
}

function layerPlugin(input: BundleInput, dest: string, root: string, findings: Findings, entryEsm: boolean): Plugin {
  const compatDir = join(root, 'src', 'convert', 'node', 'compat');
  const nodeModules = join(root, 'node_modules') + '/';
  const toImage = (host: string): string | undefined => (host === dest || host.startsWith(dest + '/') ? host.slice(dest.length) || '/' : undefined);
  return {
    name: 'boxproxy-node',
    setup(b: PluginBuild) {
      b.onResolve({ filter: /^boxproxy:main$/ }, () => ({ path: 'main', namespace: 'boxproxy' }));
      b.onLoad({ filter: /.*/, namespace: 'boxproxy' }, () => {
        const files = [...input.preloads, input.entry];
        const contents = entryEsm ? files.map((f) => `import ${JSON.stringify(f)};`).join('\n') : files.map((f) => `require(${JSON.stringify(f)});`).join('\n');
        return { contents, resolveDir: dest, loader: 'js' };
      });
      b.onResolve({ filter: /.*/ }, async (args) => {
        if ((args.pluginData as { inner?: boolean } | undefined)?.inner) return undefined;
        const fromImage = args.namespace === 'image' || args.namespace === 'boxproxy';
        const name = builtinName(args.path);
        if (name !== undefined && !args.path.startsWith('/') && !args.path.startsWith('.')) {
          const npm = NPM_PACKAGE[name];
          if (npm && args.namespace === 'file' && args.importer.startsWith(nodeModules)) {
            return b.resolve(npm, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: { inner: true } });
          }
          const file = PROVIDED[name];
          // require() gets what Node's require gives (EventEmitter itself for 'events', the process object),
          // the module's default export; import gets the module.
          if (file && (args.kind === 'require-call' || args.kind === 'require-resolve')) return { path: file, namespace: 'boxproxy-builtin' };
          if (file) return { path: join(compatDir, `${file}.ts`), namespace: 'file' };
          if (fromImage) note(findings.missing, name, args.importer);
          return { path: name, namespace: 'boxproxy-missing' };
        }
        if (!fromImage) return undefined;
        const request = args.path.startsWith('/') ? join(dest, args.path) : args.path;
        const res = await b.resolve(request, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: { inner: true } });
        // Unresolvable: esbuild's own resolver fails the same way and decides, as Node would at run time, that a
        // require() inside try/catch stays a run-time require (optional dependencies) and anything else is an error.
        if (res.errors.length > 0) return undefined;
        const pkg = /^((@[^/]+\/)?[^/.][^/]*)/.exec(args.path)?.[1];
        if (pkg && NATIVE_LOADERS.has(pkg)) note(findings.native, `${pkg} (a native addon loader)`, args.importer);
        const image = toImage(res.path);
        if (res.path.endsWith('.node')) {
          note(findings.native, image ?? res.path, args.importer);
          return { path: image ?? res.path, namespace: 'boxproxy-native' };
        }
        if (image === undefined) return { path: res.path, namespace: 'file', sideEffects: res.sideEffects };
        return { path: image, namespace: 'image', sideEffects: res.sideEffects };
      });
      b.onLoad({ filter: /.*/, namespace: 'boxproxy-builtin' }, (args) => ({
        contents: `const m = require(${JSON.stringify(join(compatDir, `${args.path}.ts`))});\nmodule.exports = m.default !== undefined ? m.default : m;`,
        resolveDir: compatDir,
        loader: 'js',
      }));
      b.onLoad({ filter: /.*/, namespace: 'boxproxy-missing' }, (args) => ({
        contents: `const { unsupportedModule } = require(${JSON.stringify(join(compatDir, 'unsupported.ts'))});\nmodule.exports = unsupportedModule(${JSON.stringify(args.path)}, ${JSON.stringify(missingReason(args.path))});`,
        resolveDir: compatDir,
        loader: 'js',
      }));
      b.onLoad({ filter: /.*/, namespace: 'boxproxy-native' }, (args) => ({
        contents: `throw Object.assign(new Error(${JSON.stringify(`${args.path}: native addons (.node) cannot be loaded in a WebAssembly Box`)}), { code: "ERR_DLOPEN_FAILED" });`,
        loader: 'js',
      }));
      b.onLoad({ filter: /.*/, namespace: 'image' }, async (args) => {
        const host = join(dest, args.path);
        const source = await readFile(host, 'utf8');
        const resolveDir = dirname(host);
        if (args.path.endsWith('.json')) return { contents: source, loader: 'json', resolveDir };
        const esm = await isEsmFile(host, dest);
        return { contents: rewriteModuleMeta(source, args.path, { esm, entry: args.path === input.entry }), loader: 'js', resolveDir };
      });
    },
  };
}

function isDependency(imagePath: string): boolean {
  return imagePath.includes('/node_modules/');
}

/** Refuses what the app itself needs and the Box cannot have; notes what only dependencies mention. */
function judge(findings: Findings): { reason?: string; notes: string[] } {
  const notes: string[] = [];
  const needs: string[] = [];
  for (const [what, importers] of [...findings.native].sort()) {
    needs.push(`native addons (.node): ${what}, required by ${[...importers].sort().join(', ')}`);
  }
  for (const [name, importers] of [...findings.missing].sort()) {
    const own = [...importers].filter((i) => !isDependency(i)).sort();
    if (own.length > 0) needs.push(`${missingReason(name)}: ${own.join(', ')} import${own.length === 1 ? 's' : ''} node:${name}`);
    else notes.push(`node:${name} (${missingReason(name)}) is imported by dependencies only (${[...importers].sort().join(', ')}); calling into it fails in the Box`);
  }
  if (needs.length > 0) return { reason: `the app needs what a WASI Box cannot provide: ${needs.join('; ')}`, notes };
  return { notes };
}

export async function bundleApp(input: BundleInput): Promise<BundleResult> {
  const dest = join(input.workDir, 'node-app');
  const budget = { left: input.maxBytes ?? DEFAULT_MAX_BYTES };
  try {
    for (const root of input.roots) await exportTree(input, dest, root, budget);
  } catch (err) {
    if ((err as Error).message === 'budget') return { ok: false, reason: `the app's files exceed ${input.maxBytes ?? DEFAULT_MAX_BYTES} bytes` };
    throw err;
  }
  await mkdir(dest, { recursive: true });
  const root = await packageRoot();
  const compatDir = join(root, 'src', 'convert', 'node', 'compat');
  const entryEsm = await isEsmFile(join(dest, input.entry), dest);
  const findings: Findings = { missing: new Map(), native: new Map() };
  const format = entryEsm ? 'esm' : 'iife';
  const outfile = join(input.workDir, 'node-bundle', entryEsm ? 'app.mjs' : 'app.js');
  let result;
  try {
    result = await build({
      entryPoints: ['boxproxy:main'],
      bundle: true,
      outfile,
      write: true,
      format,
      platform: 'neutral',
      // Node's resolution: "main" (not "module"), the "node" and "require"/"import" conditions, .js/.json/.node.
      mainFields: ['main'],
      conditions: ['node'],
      resolveExtensions: ['.js', '.json', '.node'],
      nodePaths: input.nodePaths.map((p) => join(dest, p)),
      target: 'es2022',
      inject: [join(compatDir, 'prologue.ts')],
      banner: { js: `globalThis.__boxproxyNode = ${JSON.stringify(input.config)};` },
      absWorkingDir: root,
      minifyWhitespace: true,
      charset: 'utf8',
      legalComments: 'none',
      logLevel: 'silent',
      metafile: true,
      plugins: [layerPlugin(input, dest, root, findings, entryEsm)],
    });
  } catch (err) {
    const errors = (err as { errors?: Array<{ text: string; location?: { file: string; line: number } | null }> }).errors;
    if (!errors) throw err;
    const first = errors
      .slice(0, 3)
      .map((e) => (e.location ? `${e.location.file.replace(/^image:/, '')}:${e.location.line}: ${e.text}` : e.text))
      .join('; ');
    return { ok: false, reason: `bundling the app failed: ${first}` };
  }
  const verdict = judge(findings);
  if (verdict.reason) return { ok: false, reason: verdict.reason };
  const notes = [...verdict.notes];
  for (const w of result.warnings.slice(0, 5)) notes.push(`bundler: ${w.location ? `${w.location.file.replace(/^image:/, '')}:${w.location.line}: ` : ''}${w.text}`);
  const inputs = Object.keys(result.metafile?.inputs ?? {}).filter((k) => k.startsWith('image:')).length;
  const bytes = (await readFile(outfile)).length;
  return { ok: true, file: outfile, format, bytes, inputs, notes };
}
