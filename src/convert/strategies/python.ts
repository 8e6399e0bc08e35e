import { readdir } from 'node:fs/promises';
import { LABEL_RUNTIME, LABEL_RUNTIME_PACKAGE } from '../../box/format.js';
import { join } from 'node:path';
import { envValue, lookupExecutable, shebangInterpreter, mergeEnv, type FileKind, type ResolvedExecutable } from '../detect.js';
import type { PythonRuntime } from '../runtimes.js';
import type { DirNode, Inode } from '../vfs.js';
import { basename, splitArgs, type BoxModule, type PlanOutcome, type Strategy, type StrategyContext } from './types.js';

/** Where the interpreter and its stdlib sit in a Python Box (PYTHONHOME=/usr/local, like python:3.x images). */
export const PYTHON_BOX_PREFIX = '/usr/local';
export const PYTHON_WASM_BOX_PATH = '/usr/local/bin/python.wasm';

const PYTHON_NAME = /^python(\d+(\.\d+)?)?$/;
/** Directories of executables: a script there brings only itself, not its neighbours. */
const SYSTEM_BIN_DIRS = new Set(['/', '/bin', '/sbin', '/usr/bin', '/usr/sbin', '/usr/local/bin', '/usr/local/sbin']);
/** Image files kept besides the app and site-packages: small system configuration programs read. */
const ALWAYS_KEPT = ['/etc'];
/** Bound on the static import scan (bytes of Python source read). */
const SCAN_BYTE_BUDGET = 64 * 1024 * 1024;

export interface PythonStrategyOptions {
  /**
   * When the app imports a package carrying native extensions (*.so, which have no Wasm build): `refuse` (no
   * Box, the packages named in the reason) or `warn` (build the Box; importing them will fail at run time).
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

/** What `python [options] …` runs: a script, `-m module`, `-c code`, or nothing (the REPL). */
export function pythonMain(args: readonly string[]): PythonMain {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '-') return { kind: 'none' };
    if (a === '--') return args[i + 1] !== undefined ? { kind: 'script', path: args[i + 1] as string } : { kind: 'none' };
    if (!a.startsWith('-')) return { kind: 'script', path: a };
    if (a.startsWith('--')) {
      if (a === '--check-hash-based-pycs') i++;
      continue;
    }
    // Short options may be bundled (-uB); -c, -m, -W, -X take the rest of the word or the next argument.
    for (let j = 1; j < a.length; j++) {
      const opt = a[j] as string;
      if ('cmWX'.includes(opt)) {
        const value = a.length > j + 1 ? a.slice(j + 1) : (args[++i] ?? '');
        if (opt === 'c') return { kind: 'code', code: value };
        if (opt === 'm') return { kind: 'module', name: value };
        break;
      }
    }
  }
  return { kind: 'none' };
}

/** "3.11.9" / "3.11" / "python3.11" -> "3.11"; undefined without a major.minor. */
function majorMinor(version: string): string | undefined {
  const m = /(\d+)\.(\d+)/.exec(version);
  return m ? `${m[1]}.${m[2]}` : undefined;
}

/** The image's Python version: PYTHON_VERSION (official images), the interpreter's name, or its stdlib directory. */
export function imagePythonVersion(ctx: StrategyContext, names: ReadonlyArray<string | undefined>): string {
  const fromEnv = envValue(ctx.detection.env, 'PYTHON_VERSION');
  if (fromEnv && /^\d+\.\d+/.test(fromEnv)) return fromEnv;
  for (const name of names) {
    const m = name ? /^python(\d+\.\d+)/.exec(basename(name)) : null;
    if (m?.[1]) return m[1];
  }
  const versions = imageStdlibDirs(ctx).map((d) => basename(d).slice('python'.length));
  versions.sort((a, b) => Number(b.split('.')[1]) - Number(a.split('.')[1]));
  return versions[0] ?? '';
}

/** /usr/local/lib/pythonX.Y and /usr/lib/pythonX.Y that hold a stdlib (os.py). */
function imageStdlibDirs(ctx: StrategyContext): string[] {
  const out: string[] = [];
  for (const libDir of ['/usr/local/lib', '/usr/lib']) {
    const dir = ctx.fs.get(libDir.slice(1).split('/'));
    if (dir?.type !== 'dir') continue;
    for (const [name, node] of dir.children) {
      if (/^python\d+\.\d+$/.test(name) && node.type === 'dir' && node.children.has('os.py')) out.push(`${libDir}/${name}`);
    }
  }
  return out.sort();
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

/** Top-level import name of a path inside a packages directory ("numpy/core/x.so" -> "numpy"). */
function topLevelName(rel: string): string {
  const first = rel.split('/')[0] as string;
  // Wheels vendor shared libraries next to the package as "<name>.libs".
  if (first.endsWith('.libs')) return first.slice(0, -'.libs'.length);
  return first.split('.')[0] as string;
}

interface PackageIndex {
  /** Top-level names carrying native extensions -> their .so paths. */
  native: Map<string, string[]>;
  /** Top-level pure-Python names -> the .py files that make them. */
  pure: Map<string, Array<{ path: string; inode: Inode }>>;
}

function isNativeExtension(name: string, inode: Inode): boolean {
  return (/\.so(\.|$)/.test(name) || name.endsWith('.pyd')) && (inode.kind.kind === 'elf' || inode.dropped !== undefined);
}

/** Indexes Python code under `roots` (packages dirs or app dirs) by top-level import name. */
function indexPackages(ctx: StrategyContext, roots: readonly string[]): PackageIndex {
  const native = new Map<string, string[]>();
  const pure = new Map<string, Array<{ path: string; inode: Inode }>>();
  for (const root of roots) {
    const hit = ctx.fs.resolve(root);
    if (!hit.ok || hit.node.type !== 'dir') continue;
    const visit = (dir: DirNode, rel: string): void => {
      for (const [name, node] of [...dir.children].sort(([a], [b]) => (a < b ? -1 : 1))) {
        const childRel = rel ? `${rel}/${name}` : name;
        if (node.type === 'dir') {
          if (name !== '__pycache__' && !name.endsWith('.dist-info') && !name.endsWith('.egg-info')) visit(node, childRel);
          continue;
        }
        if (node.type !== 'file') continue;
        const top = topLevelName(childRel);
        if (isNativeExtension(name, node.inode)) {
          const list = native.get(top) ?? [];
          list.push(`${root}/${childRel}`);
          native.set(top, list);
        } else if (name.endsWith('.py')) {
          const list = pure.get(top) ?? [];
          list.push({ path: `${root}/${childRel}`, inode: node.inode });
          pure.set(top, list);
        }
      }
    };
    visit(hit.node, '');
  }
  return { native, pure };
}

const IMPORT_LINE = /^\s*import\s+([\w.]+(?:\s+as\s+\w+)?(?:\s*,\s*[\w.]+(?:\s+as\s+\w+)?)*)/;
const FROM_LINE = /^\s*from\s+([\w.]+)\s+import\b/;
const DYNAMIC_IMPORT = /(?:import_module|__import__)\(\s*['"]([\w.]+)['"]/g;

/** Top-level module names a Python source imports (static: import / from-import lines, literal dynamic imports). */
export function importedNames(source: string): string[] {
  const names = new Set<string>();
  for (const line of source.split('\n')) {
    const code = line.replace(/#.*/, '');
    const imp = IMPORT_LINE.exec(code);
    if (imp?.[1]) for (const part of imp[1].split(',')) names.add((part.trim().split(/\s+/)[0] as string).split('.')[0] as string);
    const from = FROM_LINE.exec(code);
    if (from?.[1]) names.add(from[1].split('.')[0] as string);
    for (const m of code.matchAll(DYNAMIC_IMPORT)) names.add((m[1] as string).split('.')[0] as string);
  }
  names.delete('');
  return [...names].sort();
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

function under(path: string, dir: string): boolean {
  return dir === '/' || path === dir || path.startsWith(dir.endsWith('/') ? dir : dir + '/');
}

function dirOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/** argv[0] (or a script's shebang) is CPython: the Box carries CPython for WASI, its stdlib and the app. */
export function pythonStrategy(options: PythonStrategyOptions = {}): Strategy {
  const nativePolicy = options.nativeExtensions ?? 'refuse';
  const filesPolicy = options.files ?? 'app';
  return {
    name: 'python',
    async plan(ctx: StrategyContext): Promise<PlanOutcome> {
      const { detection } = ctx;
      const target = detection.target;
      if (!target) return { reason: detection.problem ?? 'no entrypoint' };
      let fixedArgs: string[];
      let pyArgs: string[];
      let interpreterNames: Array<string | undefined>;
      const byName = PYTHON_NAME.test(basename(target.requested)) || PYTHON_NAME.test(basename(target.resolvedPath));
      const shebang = byName ? undefined : pythonFromShebang(target.kind);
      if (byName) {
        interpreterNames = [target.resolvedPath, target.path, target.requested];
        ({ fixed: fixedArgs, cmd: pyArgs } = splitArgs(detection.argv, detection.entrypointCount, 1));
      } else if (shebang) {
        const lookup = lookupExecutable(ctx.fs, shebang.interpreter, detection.env, detection.workingDir);
        const exe: ResolvedExecutable | undefined = lookup.ok ? lookup.exe : undefined;
        interpreterNames = [exe?.resolvedPath, exe?.path, shebang.interpreter];
        const { fixed, cmd } = splitArgs(detection.argv, detection.entrypointCount, 1);
        // The kernel runs `<interpreter> [options] <script> args…`; the script path is fixed like argv[0] was.
        fixedArgs = [...shebang.options, target.resolvedPath, ...fixed];
        pyArgs = cmd;
      } else {
        return { reason: `${target.path} is not a Python interpreter or a Python script` };
      }

      const main = pythonMain([...fixedArgs, ...pyArgs]);
      let scriptPath: string | undefined;
      let scriptInode: Inode | undefined;
      if (main.kind === 'script') {
        const path = main.path.startsWith('/') ? main.path : `${detection.workingDir.replace(/\/$/, '')}/${main.path}`;
        const hit = ctx.fs.resolve(path);
        if (!hit.ok || hit.node.type !== 'file') return { reason: `the Python script ${path} is not a file in the image`, recognized: true };
        scriptPath = hit.path;
        scriptInode = hit.node.inode;
      }

      const version = imagePythonVersion(ctx, interpreterNames);
      const runtime: PythonRuntime | undefined = ctx.runtimes.python ? await ctx.runtimes.python(version) : undefined;
      if (!runtime) {
        return {
          reason: `no CPython-for-WASI runtime in the runtime catalog for the image's Python ${version || '(unknown version)'} (build one: boxproxy runtimes build python)`,
          recognized: true,
          needs: { name: 'python', version },
        };
      }
      const notes: string[] = [];
      const runtimeMinor = majorMinor(runtime.version) ?? runtime.version;
      const wanted = majorMinor(version);
      if (wanted && wanted !== runtimeMinor) notes.push(`the image has Python ${version}; the nearest runtime is CPython ${runtime.version} for WASI`);
      const boxStdlib = `${PYTHON_BOX_PREFIX}/lib/python${runtimeMinor}`;

      // Where the app's code lives: sys.path[0] (the script's directory, or the working directory for -m/-c),
      // the working directory and the image's PYTHONPATH.
      const imagePythonPath = (envValue(detection.env, 'PYTHONPATH') ?? '').split(':').filter((p) => p.startsWith('/'));
      const appDirs = new Set<string>();
      if (scriptPath && !SYSTEM_BIN_DIRS.has(dirOf(scriptPath))) appDirs.add(dirOf(scriptPath));
      if (!SYSTEM_BIN_DIRS.has(detection.workingDir.replace(/\/$/, '') || '/')) appDirs.add(detection.workingDir.replace(/\/$/, ''));
      for (const p of imagePythonPath) if (!SYSTEM_BIN_DIRS.has(p)) appDirs.add(p.replace(/\/$/, ''));

      const packagesDirs = sitePackagesDirs(ctx);
      const packages = indexPackages(ctx, packagesDirs);
      const app = indexPackages(ctx, [...appDirs]);

      // Static scan: the entry code, then every app or pure-Python package it imports, transitively.
      const needed = new Set<string>();
      const seen = new Set<string>();
      let scanned = 0;
      let scanTruncated = false;
      const queue: string[] = [];
      const scanSource = (source: string): void => {
        for (const name of importedNames(source)) if (!seen.has(name)) queue.push(name);
      };
      if (scriptInode) {
        scanned += scriptInode.size;
        scanSource((await ctx.readFile(scriptInode)).toString('utf8'));
      } else if (main.kind === 'module') queue.push(main.name.split('.')[0] as string);
      else if (main.kind === 'code') scanSource(main.code);
      while (queue.length > 0) {
        const name = queue.shift() as string;
        if (seen.has(name)) continue;
        seen.add(name);
        if (packages.native.has(name) || app.native.has(name)) {
          needed.add(name);
          continue;
        }
        for (const f of [...(app.pure.get(name) ?? []), ...(packages.pure.get(name) ?? [])]) {
          if (scanned + f.inode.size > SCAN_BYTE_BUDGET) {
            scanTruncated = true;
            break;
          }
          if (!f.inode.content) continue;
          scanned += f.inode.size;
          scanSource((await ctx.readFile(f.inode)).toString('utf8'));
        }
      }
      const nativeNames = [...new Set([...packages.native.keys(), ...app.native.keys()])].sort();
      const neededNames = [...needed].sort();
      const labels: Record<string, string> = { [LABEL_RUNTIME]: `python@${runtime.version}` };
      if (runtime.artifact) labels[LABEL_RUNTIME_PACKAGE] = runtime.artifact;
      if (nativeNames.length > 0) {
        labels['dev.boxproxy.python.native-extensions'] = nativeNames.join(',');
        const how = 'found by a static scan of import statements in the entry script, the app and the pure-Python packages it imports';
        if (neededNames.length > 0 && nativePolicy === 'refuse') {
          return {
            reason: `the app imports packages with native extensions (*.so, no Wasm build): ${neededNames.join(', ')} (${how}); other native packages in the image: ${nativeNames.filter((n) => !needed.has(n)).join(', ') || 'none'}`,
            recognized: true,
          };
        }
        notes.push(`packages with native extensions (*.so, left out): ${nativeNames.join(', ')}`);
        if (neededNames.length > 0) notes.push(`WARNING: the app imports ${neededNames.join(', ')}, which need native extensions; those imports will fail in the Box (${how})`);
        else notes.push(`the entrypoint does not import them (${how})`);
      }
      if (scanTruncated) notes.push(`the import scan stopped after ${SCAN_BYTE_BUDGET} bytes of source; native imports beyond it were not checked`);

      // Module layer: the interpreter and the stdlib.
      const stdlibRel = await (stdlibFiles.get(runtime.stdlibDir) ??
        (() => {
          const p = listStdlib(runtime.stdlibDir);
          stdlibFiles.set(runtime.stdlibDir, p);
          p.catch(() => stdlibFiles.delete(runtime.stdlibDir));
          return p;
        })());
      const modules: BoxModule[] = [{ boxPath: PYTHON_WASM_BOX_PATH, from: { kind: 'host', path: runtime.wasmPath }, mode: 0o555 }];
      for (const rel of stdlibRel) modules.push({ boxPath: `${boxStdlib}/${rel}`, from: { kind: 'host', path: join(runtime.stdlibDir, rel) }, mode: 0o444 });
      const modulePaths = new Set(modules.map((m) => m.boxPath));

      // Rootfs: the image's own stdlib (native build, replaced by the runtime's), stale bytecode and, by default,
      // everything outside the app, the packages and /etc are left out.
      const replacedStdlibs = [...imageStdlibDirs(ctx), boxStdlib];
      const keptRoots = [...appDirs, ...packagesDirs, ...ALWAYS_KEPT];
      const excludePaths: string[] = [];
      const left: Record<'stdlib' | 'bytecode' | 'outside', [files: number, bytes: number]> = { stdlib: [0, 0], bytecode: [0, 0], outside: [0, 0] };
      const count = (k: keyof typeof left, size: number): void => {
        left[k] = [left[k][0] + 1, left[k][1] + size];
      };
      for (const { path, node } of ctx.fs.walk()) {
        if (node.type === 'dir') continue;
        const size = node.type === 'file' ? node.inode.size : 0;
        const inPackages = packagesDirs.some((d) => under(path, d));
        if (modulePaths.has(path) || path === scriptPath) {
          if (modulePaths.has(path)) excludePaths.push(path);
          continue;
        }
        if (!inPackages && replacedStdlibs.some((d) => under(path, d))) {
          excludePaths.push(path);
          count('stdlib', size);
        } else if (/\/__pycache__\/[^/]+\.pyc$/.test(path)) {
          // Timestamp-checked bytecode never matches in a Box (every entry has the Box's mtime): dead weight.
          excludePaths.push(path);
          count('bytecode', size);
        } else if (filesPolicy === 'app' && !keptRoots.some((d) => under(path, d))) {
          excludePaths.push(path);
          count('outside', size);
        }
      }
      if (left.stdlib[0]) notes.push(`the image's own Python stdlib (${left.stdlib[0]} files, ${left.stdlib[1]} bytes) replaced by the runtime's at ${boxStdlib}`);
      if (left.bytecode[0]) notes.push(`${left.bytecode[0]} .pyc files (${left.bytecode[1]} bytes) left out: their timestamps cannot match in a Box`);
      if (left.outside[0]) {
        notes.push(`${left.outside[0]} files (${left.outside[1]} bytes) outside the app (${[...appDirs].join(', ') || 'script only'}), site-packages and /etc left out`);
      }

      // PYTHONHOME puts sys.prefix where the stdlib is; site adds /usr/local/lib/pythonX.Y/site-packages itself,
      // the other packages dirs (Debian's dist-packages, virtualenvs, other versions) come through PYTHONPATH.
      const pythonPath = [...imagePythonPath];
      for (const d of packagesDirs) if (d !== `${boxStdlib}/site-packages` && !pythonPath.includes(d)) pythonPath.push(d);
      const envOverrides = [`PYTHONHOME=${PYTHON_BOX_PREFIX}`];
      if (pythonPath.length > 0) envOverrides.push(`PYTHONPATH=${pythonPath.join(':')}`);
      // WASI has no working directory; python.wasm enters $PWD at start-up (scripts/runtimes/python/build.sh).
      envOverrides.push(`PWD=${detection.workingDir}`);
      return {
        strategy: 'python',
        runner: 'wasi',
        modules,
        entrypoint: [PYTHON_WASM_BOX_PATH, ...fixedArgs],
        cmd: pyArgs,
        env: mergeEnv(detection.env, envOverrides),
        workingDir: detection.workingDir,
        labels,
        excludePaths,
        notes,
      };
    },
  };
}

/** The default `python` strategy: refuses apps that import native extensions, keeps the app and its packages. */
export const python: Strategy = pythonStrategy();
