import { readdir, readFile } from 'node:fs/promises';
import { LABEL_RUNTIME, LABEL_RUNTIME_PACKAGE } from '../../box/format.js';
import { join } from 'node:path';
import { envValue, lookupExecutable, shebangInterpreter, mergeEnv, type FileKind, type ResolvedExecutable } from '../detect.js';
import { moduleLevelImports, nativePackages, pythonTrial } from '../python-imports.js';
import { FALLBACK_PREFIX, imagePythonVersion, imageStdlibDirs, majorMinor, pythonLayout, type PythonLayout } from '../python-layout.js';
import type { PythonRuntime } from '../runtimes.js';
import type { Inode } from '../vfs.js';
import { basename, splitArgs, type BoxModule, type PlanOutcome, type Strategy, type StrategyContext } from './types.js';

export { importedNames } from '../python-imports.js';

/** Where python.wasm sits in a Box whose image has no findable interpreter prefix (python:3.x images' prefix). */
export const PYTHON_WASM_BOX_PATH = `${FALLBACK_PREFIX}/bin/python.wasm`;

const PYTHON_NAME = /^python(\d+(\.\d+)?)?$/;
/** Directories of executables: a script there brings only itself, not its neighbours. */
const SYSTEM_BIN_DIRS = new Set(['/', '/bin', '/sbin', '/usr/bin', '/usr/sbin', '/usr/local/bin', '/usr/local/sbin']);
/** Image files kept besides the app and site-packages: small system configuration programs read. */
const ALWAYS_KEPT = ['/etc'];

export interface PythonStrategyOptions {
  /**
   * When the Box's interpreter cannot import what the app imports (the trial): `refuse` (no Box, the
   * interpreter's error is the reason) or `warn` (build the Box; the report carries the error).
   */
  nativeExtensions?: 'refuse' | 'warn';
  /**
   * `app`: the Box's rootfs holds the app (WorkingDir, the script's directory, the image's PYTHONPATH),
   * site-packages / dist-packages and /etc; `all`: every image file that can matter in Wasm.
   */
  files?: 'app' | 'all';
}

/** The Python interpreter a shebang names (`#!/usr/bin/python3 -u`, `#!/usr/bin/env python3`), with its options. */
export function pythonFromShebang(kind: FileKind): { interpreter: string; options: string[] } | undefined {
  return shebangInterpreter(kind, PYTHON_NAME);
}

export type PythonMain = { kind: 'script'; path: string } | { kind: 'module'; name: string } | { kind: 'code'; code: string } | { kind: 'none' };

/** What `python [options] …` runs: a script, `-m module`, `-c code`, or nothing (the REPL); `options` come before it. */
export function pythonCommand(args: readonly string[]): { main: PythonMain; options: string[] } {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    const options = args.slice(0, i);
    if (a === '-') return { main: { kind: 'none' }, options };
    if (a === '--') return { main: args[i + 1] !== undefined ? { kind: 'script', path: args[i + 1] as string } : { kind: 'none' }, options };
    if (!a.startsWith('-')) return { main: { kind: 'script', path: a }, options };
    if (a.startsWith('--')) {
      if (a === '--check-hash-based-pycs') i++;
      continue;
    }
    // Short options may be bundled (-uB); -c, -m, -W, -X take the rest of the word or the next argument.
    for (let j = 1; j < a.length; j++) {
      const opt = a[j] as string;
      if ('cmWX'.includes(opt)) {
        const value = a.length > j + 1 ? a.slice(j + 1) : (args[++i] ?? '');
        const before = j > 1 ? [...options, a.slice(0, j)] : options;
        if (opt === 'c') return { main: { kind: 'code', code: value }, options: before };
        if (opt === 'm') return { main: { kind: 'module', name: value }, options: before };
        break;
      }
    }
  }
  return { main: { kind: 'none' }, options: [...args] };
}

/** What `python [options] …` runs (see pythonCommand). */
export function pythonMain(args: readonly string[]): PythonMain {
  return pythonCommand(args).main;
}

const PACKAGES_DIR = /\/(site|dist)-packages$/;

/** Every site-packages / dist-packages directory of the image (system, /usr/local, virtualenvs, user installs). */
function sitePackagesDirs(ctx: StrategyContext): string[] {
  const out: string[] = [];
  for (const { path, node } of ctx.fs.walk()) {
    if (node.type === 'dir' && PACKAGES_DIR.test(path) && /\/lib\/python[\d.]*\//.test(path + '/')) out.push(path);
  }
  return out;
}

/** Stdlib file lists per runtime directory (read once per process). */
const stdlibFiles = new Map<string, Promise<string[]>>();

async function listStdlib(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    const entries = await readdir(d, { withFileTypes: true });
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(join(d, e.name), r);
      else if (e.isFile()) out.push(r);
    }
  };
  await walk(dir, '');
  return out.sort();
}

function cachedStdlib(dir: string): Promise<string[]> {
  let p = stdlibFiles.get(dir);
  if (!p) {
    p = listStdlib(dir);
    stdlibFiles.set(dir, p);
    p.catch(() => stdlibFiles.delete(dir));
  }
  return p;
}

function under(path: string, dir: string): boolean {
  return dir === '/' || path === dir || path.startsWith(dir.endsWith('/') ? dir : dir + '/');
}

function dirOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

interface Entry {
  /** Interpreter arguments the image fixed (its Entrypoint part, a shebang's script) and the replaceable rest. */
  fixedArgs: string[];
  pyArgs: string[];
  /** The interpreter as exec'd and what it resolves to, and the names its version may show in. */
  invoked?: string;
  real?: string;
  names: Array<string | undefined>;
}

/** argv[0] as a Python interpreter, or a script whose shebang names one. */
function pythonEntry(ctx: StrategyContext): Entry | { reason: string } {
  const { detection } = ctx;
  const target = detection.target;
  if (!target) return { reason: detection.problem ?? 'no entrypoint' };
  const { fixed, cmd } = splitArgs(detection.argv, detection.entrypointCount, 1);
  if (PYTHON_NAME.test(basename(target.requested)) || PYTHON_NAME.test(basename(target.resolvedPath))) {
    return { fixedArgs: fixed, pyArgs: cmd, invoked: target.path, real: target.resolvedPath, names: [target.resolvedPath, target.path, target.requested] };
  }
  const shebang = pythonFromShebang(target.kind);
  if (!shebang) return { reason: `${target.path} is not a Python interpreter or a Python script` };
  const lookup = lookupExecutable(ctx.fs, shebang.interpreter, detection.env, detection.workingDir);
  const exe: ResolvedExecutable | undefined = lookup.ok ? lookup.exe : undefined;
  // The kernel runs `<interpreter> [options] <script> args…`; the script path is fixed like argv[0] was.
  return {
    fixedArgs: [...shebang.options, target.resolvedPath, ...fixed],
    pyArgs: cmd,
    ...(exe ? { invoked: exe.path, real: exe.resolvedPath } : {}),
    names: [exe?.resolvedPath, exe?.path, shebang.interpreter],
  };
}

/** The file `python -m name` runs and the package its relative imports resolve against. */
function moduleFile(ctx: StrategyContext, name: string, searchDirs: readonly string[]): { path: string; pkg: string } | undefined {
  const rel = name.split('.').join('/');
  for (const dir of searchDirs) {
    for (const [candidate, pkg] of [
      [`${dir}/${rel}/__main__.py`, name],
      [`${dir}/${rel}.py`, name.split('.').slice(0, -1).join('.')],
    ] as const) {
      const hit = ctx.fs.resolve(candidate);
      if (hit.ok && hit.node.type === 'file') return { path: hit.path, pkg };
    }
  }
  return undefined;
}

/** The import statements the entry code runs at load time: what the trial tries. */
async function entryImports(ctx: StrategyContext, main: PythonMain, scriptInode: Inode | undefined, searchDirs: readonly string[]): Promise<string[]> {
  if (main.kind === 'code') return moduleLevelImports(main.code);
  if (main.kind === 'script' && scriptInode) {
    return moduleLevelImports((await ctx.readFile(scriptInode)).toString('utf8'));
  }
  if (main.kind !== 'module') return [];
  const probes = [`import ${main.name}`];
  const found = moduleFile(ctx, main.name, searchDirs);
  const hit = found ? ctx.fs.resolve(found.path) : undefined;
  if (found && hit?.ok && hit.node.type === 'file' && hit.node.inode.content) {
    probes.push(...moduleLevelImports((await ctx.readFile(hit.node.inode)).toString('utf8'), found.pkg));
  }
  return [...new Set(probes)];
}

/** The runtime's stdlib as module-layer files at <prefix>/lib/pythonX.Y; the image's site.py replaces the runtime's. */
async function stdlibModules(runtime: PythonRuntime, boxStdlib: string, layout: PythonLayout): Promise<BoxModule[]> {
  const modules: BoxModule[] = [];
  for (const rel of await cachedStdlib(runtime.stdlibDir)) {
    // Only the image decides whether lib/pythonX.Y/site-packages exists (and so is on sys.path).
    if (rel === 'site-packages/README.txt') continue;
    // The runtime's bytecode is unchecked-hash: it would win over the image's site.py source.
    if (layout.siteModule && (rel === 'site.py' || /^__pycache__\/site\.[^/]+\.pyc$/.test(rel))) continue;
    modules.push({ boxPath: `${boxStdlib}/${rel}`, from: { kind: 'host', path: join(runtime.stdlibDir, rel) }, mode: 0o444 });
  }
  return modules;
}

/** The script `python script.py` runs, as a file of the image (undefined for -m, -c and the REPL). */
function resolveScript(ctx: StrategyContext, main: PythonMain): { path?: string; inode?: Inode } | { reason: string; recognized: true } {
  if (main.kind !== 'script') return {};
  const path = main.path.startsWith('/') ? main.path : `${ctx.detection.workingDir.replace(/\/$/, '')}/${main.path}`;
  const hit = ctx.fs.resolve(path);
  if (!hit.ok || hit.node.type !== 'file') return { reason: `the Python script ${path} is not a file in the image`, recognized: true };
  return { path: hit.path, inode: hit.node.inode };
}

interface AppDirs {
  /** Where the app's code lives: the script's directory, the working directory, the image's PYTHONPATH. */
  app: string[];
  /** The image's PYTHONPATH entries (absolute ones). */
  pythonPath: string[];
  workDir: string;
  /** Every site-/dist-packages directory of the image. */
  packages: string[];
}

function appDirectories(ctx: StrategyContext, scriptPath: string | undefined): AppDirs {
  const pythonPath = (envValue(ctx.detection.env, 'PYTHONPATH') ?? '').split(':').filter((p) => p.startsWith('/'));
  const workDir = ctx.detection.workingDir.replace(/\/$/, '') || '/';
  const app = new Set<string>();
  if (scriptPath && !SYSTEM_BIN_DIRS.has(dirOf(scriptPath))) app.add(dirOf(scriptPath));
  if (!SYSTEM_BIN_DIRS.has(workDir)) app.add(workDir);
  for (const p of pythonPath) if (!SYSTEM_BIN_DIRS.has(p)) app.add(p.replace(/\/$/, ''));
  return { app: [...app], pythonPath, workDir, packages: sitePackagesDirs(ctx) };
}

/** The runtime for the image's Python, or the refusal that names what is missing (a proxy then obtains it). */
async function findRuntime(ctx: StrategyContext, version: string): Promise<PythonRuntime | { reason: string; recognized: true; needs: { name: 'python'; version: string } }> {
  const runtime = ctx.runtimes.python ? await ctx.runtimes.python(version) : undefined;
  if (runtime) return runtime;
  return {
    reason: `no CPython-for-WASI runtime in the runtime catalog for the image's Python ${version || '(unknown version)'} (build one: boxproxy runtimes build python)`,
    recognized: true,
    needs: { name: 'python', version },
  };
}

/** Without the image's own site.py (another X.Y, or none), its packages directories come through PYTHONPATH. */
function boxEnv(ctx: StrategyContext, layout: PythonLayout, dirs: AppDirs, boxStdlib: string): string[] {
  const overrides: string[] = [];
  if (!layout.siteModule && !layout.venv) {
    const pythonPath = [...dirs.pythonPath];
    for (const d of dirs.packages) if (d !== `${boxStdlib}/site-packages` && !pythonPath.includes(d)) pythonPath.push(d);
    if (pythonPath.length > dirs.pythonPath.length) overrides.push(`PYTHONPATH=${pythonPath.join(':')}`);
  }
  // WASI has no working directory; python.wasm enters $PWD at start-up (scripts/runtimes/python/build.sh).
  overrides.push(`PWD=${ctx.detection.workingDir}`);
  return mergeEnv(ctx.detection.env, overrides);
}

/** argv[0] (or a script's shebang) is CPython: the Box carries CPython for WASI, its stdlib and the app. */
export function pythonStrategy(options: PythonStrategyOptions = {}): Strategy {
  const failurePolicy = options.nativeExtensions ?? 'refuse';
  const filesPolicy = options.files ?? 'app';
  return {
    name: 'python',
    async plan(ctx: StrategyContext): Promise<PlanOutcome> {
      const entry = pythonEntry(ctx);
      if ('reason' in entry) return entry;
      const { main, options: interpreterOptions } = pythonCommand([...entry.fixedArgs, ...entry.pyArgs]);
      const script = resolveScript(ctx, main);
      if ('reason' in script) return script;
      const version = imagePythonVersion(ctx, entry.names);
      const runtime = await findRuntime(ctx, version);
      if ('reason' in runtime) return runtime;

      const runtimeMinor = majorMinor(runtime.version) ?? runtime.version;
      const wanted = majorMinor(version);
      const siteSource = await readFile(join(runtime.stdlibDir, 'site.py')).catch(() => undefined);
      const layout = await pythonLayout(ctx, entry.invoked, entry.real, wanted, { minor: runtimeMinor, siteSource });
      const boxOptions = layout.siteModule ? ['-X', 'frozen_modules=off'] : [];
      const boxStdlib = `${layout.prefix === '/' ? '' : layout.prefix}/lib/python${runtimeMinor}`;
      const notes: string[] = [...layout.notes];
      if (wanted && wanted !== runtimeMinor) notes.push(`the image has Python ${version}; the nearest runtime is CPython ${runtime.version} for WASI`);
      const dirs = appDirectories(ctx, script.path);

      const labels: Record<string, string> = { [LABEL_RUNTIME]: `python@${runtime.version}` };
      if (runtime.artifact) labels[LABEL_RUNTIME_PACKAGE] = runtime.artifact;
      const nativeNames = [...nativePackages(ctx, [...dirs.packages, ...dirs.app]).keys()].sort();
      if (nativeNames.length > 0) {
        labels['dev.boxproxy.python.native-extensions'] = nativeNames.join(',');
        notes.push(`packages with native extensions (*.so, left out): ${nativeNames.join(', ')}; the trial import decides whether the app runs without them`);
      }

      // The trial: the entry code's load-time imports, in the Box's interpreter, with sys.path[0] as the app has it.
      const isolated = interpreterOptions.some((o) => /^-[^-]*[IP]/.test(o));
      const path0 = isolated ? undefined : script.path ? dirOf(script.path) : dirs.workDir;
      const probes = await entryImports(ctx, main, script.inode, [dirs.workDir, ...dirs.pythonPath, ...dirs.packages]);
      const trial = probes.length > 0 ? pythonTrial([...boxOptions, ...interpreterOptions], path0, probes, failurePolicy) : undefined;
      if (!trial) notes.push('no load-time imports found in the entry code: nothing to try before the Box is kept');

      const modules: BoxModule[] = [{ boxPath: layout.modulePath, from: { kind: 'host', path: runtime.wasmPath }, mode: 0o555 }];
      modules.push(...(await stdlibModules(runtime, boxStdlib, layout)));
      const excludePaths = rootfsExclusions(ctx, {
        modulePaths: new Set(modules.map((m) => m.boxPath)),
        scriptPath: script.path,
        replacedStdlibs: [...imageStdlibDirs(ctx), boxStdlib],
        packagesDirs: dirs.packages,
        kept: layout.keptFiles,
        keptRoots: filesPolicy === 'app' ? [...dirs.app, ...dirs.packages, ...ALWAYS_KEPT, ...layout.keptFiles] : undefined,
        appDirs: dirs.app,
        boxStdlib,
        notes,
      });
      return {
        strategy: 'python',
        runner: 'wasi',
        modules,
        entrypoint: [layout.modulePath, ...boxOptions, ...entry.fixedArgs],
        cmd: entry.pyArgs,
        env: boxEnv(ctx, layout, dirs, boxStdlib),
        workingDir: ctx.detection.workingDir,
        labels,
        excludePaths,
        notes,
        ...(trial ? { trial } : {}),
      };
    },
  };
}

interface ExclusionInput {
  modulePaths: ReadonlySet<string>;
  scriptPath: string | undefined;
  replacedStdlibs: readonly string[];
  packagesDirs: readonly string[];
  /** Files kept even inside a replaced stdlib (the image's site.py, pyvenv.cfg). */
  kept: readonly string[];
  /** With files: 'app', only these trees stay; undefined keeps everything. */
  keptRoots: readonly string[] | undefined;
  appDirs: readonly string[];
  boxStdlib: string;
  notes: string[];
}

/**
 * Image files left out of the Box's rootfs: the image's own stdlib (a native build, replaced by the runtime's),
 * stale bytecode and, by default, everything outside the app, the packages and /etc.
 */
function rootfsExclusions(ctx: StrategyContext, x: ExclusionInput): string[] {
  const excludePaths: string[] = [];
  const left: Record<'stdlib' | 'bytecode' | 'outside', [files: number, bytes: number]> = { stdlib: [0, 0], bytecode: [0, 0], outside: [0, 0] };
  const count = (k: keyof typeof left, size: number): void => {
    left[k] = [left[k][0] + 1, left[k][1] + size];
  };
  for (const { path, node } of ctx.fs.walk()) {
    if (node.type === 'dir') continue;
    const size = node.type === 'file' ? node.inode.size : 0;
    if (x.modulePaths.has(path)) {
      excludePaths.push(path);
      continue;
    }
    if (path === x.scriptPath || x.kept.includes(path)) continue;
    const inPackages = x.packagesDirs.some((d) => under(path, d));
    if (!inPackages && x.replacedStdlibs.some((d) => under(path, d))) {
      excludePaths.push(path);
      count('stdlib', size);
    } else if (/\/__pycache__\/[^/]+\.pyc$/.test(path)) {
      // Timestamp-checked bytecode never matches in a Box (every entry has the Box's mtime): dead weight.
      excludePaths.push(path);
      count('bytecode', size);
    } else if (x.keptRoots && !x.keptRoots.some((d) => under(path, d))) {
      excludePaths.push(path);
      count('outside', size);
    }
  }
  if (left.stdlib[0]) x.notes.push(`the image's own Python stdlib (${left.stdlib[0]} files, ${left.stdlib[1]} bytes) replaced by the runtime's at ${x.boxStdlib}`);
  if (left.bytecode[0]) x.notes.push(`${left.bytecode[0]} .pyc files (${left.bytecode[1]} bytes) left out: their timestamps cannot match in a Box`);
  if (left.outside[0]) {
    x.notes.push(`${left.outside[0]} files (${left.outside[1]} bytes) outside the app (${x.appDirs.join(', ') || 'script only'}), site-packages and /etc left out`);
  }
  return excludePaths;
}

/** The default `python` strategy: refuses apps whose imports fail in the Box, keeps the app and its packages. */
export const python: Strategy = pythonStrategy();
