import { LABEL_RUNTIME, LABEL_RUNTIME_PACKAGE } from '../../box/format.js';
import { envValue, lookupExecutable, mergeEnv, shebangInterpreter, type FileKind, type ResolvedExecutable } from '../detect.js';
import { bundleApp } from '../node/bundle.js';
import { compileBundle } from '../node/compile.js';
import type { NodeBoxConfig } from '../node/compat/config.js';
import { basename, type BoxModule, type PlanOutcome, type Strategy, type StrategyContext } from './types.js';

/** Where QuickJS and the app's bundle sit in a Node Box. */
export const NODE_BOX_DIR = '/.boxproxy/node';
export const QJS_WASM_BOX_PATH = `${NODE_BOX_DIR}/qjs.wasm`;

const NODE_NAME = /^(node|nodejs)(\d+)?$/;
/** Directories of executables: a script there brings only itself. */
const SYSTEM_BIN_DIRS = new Set(['/', '/bin', '/sbin', '/usr/bin', '/usr/sbin', '/usr/local/bin', '/usr/local/sbin']);
/** Kept besides the app: small system configuration programs read. */
const ALWAYS_KEPT = ['/etc'];
/** node options with no meaning in a Box (V8 tuning, warnings, diagnostics): dropped with a note. */
const IGNORED_OPTIONS = /^--(max-old-space-size|max-semi-space-size|stack-size|stack-trace-limit|enable-source-maps|no-warnings|no-deprecation|trace-warnings|trace-deprecation|trace-uncaught|throw-deprecation|pending-deprecation|unhandled-rejections|title|experimental-[\w-]+|no-experimental-[\w-]+|harmony[\w-]*|use-strict|preserve-symlinks|preserve-symlinks-main|abort-on-uncaught-exception|disable-proto|frozen-intrinsics|jitless|expose-gc|dns-result-order|tls-[\w-]+|openssl-[\w-]+|use-openssl-ca|use-bundled-ca|force-fips|enable-fips|icu-data-dir|napi-modules|no-addons|no-global-search-paths|report-[\w-]+|inspect[\w-]*|debug[\w-]*|v8-options|heapsnapshot-[\w-]+|cpu-prof[\w-]*|heap-prof[\w-]*|diagnostic-dir)(=.*)?$/;

/** The Node interpreter a shebang names (`#!/usr/bin/node`, `#!/usr/bin/env node`), with its options. */
export function nodeFromShebang(kind: FileKind): { interpreter: string; options: string[] } | undefined {
  return shebangInterpreter(kind, NODE_NAME);
}

export type NodeCommand =
  | { ok: true; script: string; scriptIndex: number; preloads: string[]; execArgv: string[]; ignored: string[] }
  | { ok: false; reason: string };

/** What `node [options] script args…` runs; options a Box cannot honour are refused, V8 tuning is dropped. */
export function parseNodeArgs(args: readonly string[]): NodeCommand {
  const preloads: string[] = [];
  const execArgv: string[] = [];
  const ignored: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--') {
      const script = args[i + 1];
      return script === undefined ? { ok: false, reason: 'node is started without a script (the REPL needs a terminal)' } : { ok: true, script, scriptIndex: i + 1, preloads, execArgv, ignored };
    }
    if (!a.startsWith('-') || a === '-') {
      if (a === '-') return { ok: false, reason: 'node reads its program from stdin (-), which a Box cannot bundle' };
      return { ok: true, script: a, scriptIndex: i, preloads, execArgv, ignored };
    }
    const eq = a.indexOf('=');
    const flag = eq === -1 ? a : a.slice(0, eq);
    if (flag === '-r' || flag === '--require' || flag === '--import') {
      const value = eq === -1 ? args[++i] : a.slice(eq + 1);
      if (value === undefined) return { ok: false, reason: `node option ${flag} has no value` };
      preloads.push(value);
      execArgv.push(flag, value);
    } else if (IGNORED_OPTIONS.test(a)) {
      ignored.push(a);
      execArgv.push(a);
    } else if (flag === '-e' || flag === '--eval' || flag === '-p' || flag === '--print') {
      return { ok: false, reason: `node ${flag} (a program given on the command line) is not supported: a Box bundles a script file` };
    } else {
      return { ok: false, reason: `node option ${a} is not supported in a Box` };
    }
  }
  return { ok: false, reason: 'node is started without a script (the REPL needs a terminal)' };
}

/** libnode's soname version is Node's NODE_MODULE_VERSION (the addon ABI), one per major release. */
const ABI_MAJOR: Record<string, number> = { '93': 16, '108': 18, '111': 19, '115': 20, '120': 21, '127': 22, '131': 23, '137': 24, '141': 25 };

/**
 * The image's Node version: NODE_VERSION (official images), else the major of Debian's libnode.so.<ABI> (the
 * dpkg database, which names the full version, is not kept while flattening). `exact` says which.
 */
export function imageNodeVersion(ctx: StrategyContext): { version: string; exact: boolean } | undefined {
  const fromEnv = /^v?(\d+\.\d+\.\d+)/.exec(envValue(ctx.detection.env, 'NODE_VERSION') ?? '');
  if (fromEnv?.[1]) return { version: `v${fromEnv[1]}`, exact: true };
  for (const { path } of ctx.fs.walk()) {
    const m = /^\/usr\/lib\/(?:[\w-]+\/)?libnode\.so\.(\d+)$/.exec(path);
    const major = m?.[1] ? ABI_MAJOR[m[1]] : undefined;
    if (major) return { version: `v${major}.0.0`, exact: false };
  }
  return undefined;
}

/** A script path as Node resolves its main module: the file, then .js/.mjs/.cjs, then a directory's index.js. */
function resolveScript(ctx: StrategyContext, path: string): string | undefined {
  for (const candidate of [path, `${path}.js`, `${path}.mjs`, `${path}.cjs`, `${path}/index.js`]) {
    const hit = ctx.fs.resolve(candidate);
    if (hit.ok && hit.node.type === 'file') return hit.path;
  }
  return undefined;
}

function dirOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

function under(path: string, dir: string): boolean {
  return dir === '/' || path === dir || path.startsWith(dir + '/');
}

/** The app's directories: the script's package (nearest package.json up), node_modules folders up from it. */
function appRoots(ctx: StrategyContext, script: string): { packageRoot: string; nodeModules: string[] } {
  let packageRoot = dirOf(script);
  for (let dir = dirOf(script); dir !== '/'; dir = dirOf(dir)) {
    if (dir.split('/').includes('node_modules') && basename(dirOf(dir)) === 'node_modules') {
      packageRoot = dir;
      break;
    }
    const pkg = ctx.fs.resolve(`${dir}/package.json`);
    if (pkg.ok && pkg.node.type === 'file') {
      packageRoot = dir;
      break;
    }
  }
  const nodeModules: string[] = [];
  for (let dir = dirOf(script); ; dir = dirOf(dir)) {
    const nm = ctx.fs.resolve(`${dir === '/' ? '' : dir}/node_modules`);
    if (nm.ok && nm.node.type === 'dir' && !nodeModules.includes(nm.path)) nodeModules.push(nm.path);
    if (dir === '/') break;
  }
  return { packageRoot, nodeModules };
}

const ARCH: Record<string, string> = { amd64: 'x64', arm64: 'arm64', arm: 'arm', '386': 'ia32', ppc64le: 'ppc64', s390x: 's390x', riscv64: 'riscv64' };

/** argv[0] (or a script's shebang) is Node: the Box carries QuickJS for WASI and the app bundled with the Node layer. */
export const node: Strategy = {
  name: 'node',
  async plan(ctx: StrategyContext): Promise<PlanOutcome> {
    const { detection } = ctx;
    const target = detection.target;
    if (!target) return { reason: detection.problem ?? 'no entrypoint' };
    let nodeExe: ResolvedExecutable | undefined;
    /** node's own command line: options, then the script. */
    let nodeArgs: string[];
    const byName = NODE_NAME.test(basename(target.requested)) || NODE_NAME.test(basename(target.resolvedPath));
    const shebang = byName ? undefined : nodeFromShebang(target.kind);
    if (byName) {
      nodeExe = target;
      nodeArgs = detection.argv.slice(1);
    } else if (shebang) {
      const lookup = lookupExecutable(ctx.fs, shebang.interpreter, detection.env, detection.workingDir);
      if (lookup.ok) nodeExe = lookup.exe;
      // The kernel runs `<interpreter> [options] <script> args…`.
      nodeArgs = [...shebang.options, target.resolvedPath];
    } else {
      return { reason: `${target.path} is not Node.js or a Node.js script` };
    }
    const cmd = parseNodeArgs(nodeArgs);
    if (!cmd.ok) return { reason: cmd.reason, recognized: true };
    const scriptPath = cmd.script.startsWith('/') ? cmd.script : `${detection.workingDir.replace(/\/$/, '')}/${cmd.script}`;
    const script = resolveScript(ctx, scriptPath);
    if (!script) return { reason: `the Node.js script ${scriptPath} is not a file in the image`, recognized: true };

    const runtime = ctx.runtimes.quickjs ? await ctx.runtimes.quickjs('') : undefined;
    if (!runtime) {
      return { reason: 'no QuickJS-for-WASI runtime in the runtime catalog (build one: boxproxy runtimes build quickjs)', recognized: true, needs: { name: 'quickjs', version: '' } };
    }

    const notes: string[] = [];
    const version = imageNodeVersion(ctx);
    if (!version) notes.push("the image's Node.js version is unknown (no NODE_VERSION, no libnode.so); process.version says v20.0.0");
    else if (!version.exact) notes.push(`the image's Node.js is ${version.version.replace(/\.0\.0$/, '')} (from libnode's ABI version); process.version says ${version.version}`);
    if (cmd.ignored.length > 0) notes.push(`node options without effect in a Box dropped: ${cmd.ignored.join(' ')}`);
    const nodePaths = (envValue(detection.env, 'NODE_PATH') ?? '').split(':').filter((p) => p.startsWith('/'));
    const { packageRoot, nodeModules } = appRoots(ctx, script);
    const roots = [...new Set([...(SYSTEM_BIN_DIRS.has(packageRoot) ? [] : [packageRoot]), ...nodeModules, ...nodePaths])];
    const preloads = cmd.preloads.map((p) => (p.startsWith('./') || p.startsWith('../') ? `${detection.workingDir.replace(/\/$/, '')}/${p}` : p));
    const config: NodeBoxConfig = {
      execPath: nodeExe?.resolvedPath ?? '/usr/bin/node',
      script,
      nodeNames: nodeExe ? [...new Set([nodeExe.requested, nodeExe.path, nodeExe.resolvedPath])] : [],
      scriptNames: byName ? [] : [...new Set([target.requested, target.path, target.resolvedPath])],
      nodeVersion: version?.version ?? 'v20.0.0',
      arch: ARCH[ctx.config.architecture ?? 'amd64'] ?? 'x64',
      globalPaths: nodePaths,
    };
    const bundled = await bundleApp({ fs: ctx.fs, readFile: ctx.readFile, workDir: ctx.workDir, entry: script, preloads, roots, nodePaths, config });
    if (!bundled.ok) return { reason: bundled.reason, recognized: true };
    notes.push(`bundled ${bundled.inputs} files of the app and its node_modules with the Node layer (${bundled.bytes} bytes, ${bundled.format})`, ...bundled.notes);

    const compiled = await compileBundle(runtime.wasmPath, bundled.file, NODE_BOX_DIR, bundled.format);
    if (!compiled.ok) return { reason: compiled.reason, recognized: true };
    notes.push(`the bundle ships as QuickJS bytecode (${compiled.bytes} bytes): the Box starts without parsing it`);
    const bundleBoxPath = `${NODE_BOX_DIR}/${basename(compiled.file)}`;
    const modules: BoxModule[] = [
      { boxPath: QJS_WASM_BOX_PATH, from: { kind: 'host', path: runtime.wasmPath }, mode: 0o555 },
      { boxPath: bundleBoxPath, from: { kind: 'host', path: compiled.file }, mode: 0o444 },
    ];
    // The image's command line follows the bundle unchanged (Entrypoint part fixed, Cmd part replaceable, as with
    // `docker run IMAGE args…`); the Node layer reads it as node does (src/convert/node/compat/command.ts).
    const fixed = detection.argv.slice(0, detection.entrypointCount);
    const cmdArgs = detection.argv.slice(detection.entrypointCount);

    // Rootfs: the app and its packages (read at run time as files: data, templates, package.json) and /etc.
    const keptRoots = [...roots, detection.workingDir.replace(/\/$/, '') || '/', ...ALWAYS_KEPT].filter((r) => !SYSTEM_BIN_DIRS.has(r) || r === '/etc');
    const excludePaths: string[] = [];
    let left = 0;
    let leftBytes = 0;
    for (const { path, node: n } of ctx.fs.walk()) {
      if (n.type === 'dir' || path === script) continue;
      if (!keptRoots.some((d) => under(path, d))) {
        excludePaths.push(path);
        left++;
        leftBytes += n.type === 'file' ? n.inode.size : 0;
      }
    }
    if (left > 0) notes.push(`${left} files (${leftBytes} bytes) outside the app (${keptRoots.join(', ')}) left out`);

    const labels: Record<string, string> = { [LABEL_RUNTIME]: `quickjs@${runtime.version}`, 'dev.boxproxy.node.version': config.nodeVersion };
    if (runtime.artifact) labels[LABEL_RUNTIME_PACKAGE] = runtime.artifact;
    return {
      strategy: 'node',
      runner: 'wasi',
      modules,
      entrypoint: [QJS_WASM_BOX_PATH, '--std', bundleBoxPath, ...fixed],
      cmd: cmdArgs,
      // qjs.wasm enters $PWD at start-up (WASI has no working directory; scripts/runtimes/quickjs/wasi.patch).
      env: mergeEnv(detection.env, [`PWD=${detection.workingDir}`]),
      workingDir: detection.workingDir,
      labels,
      excludePaths,
      notes,
    };
  },
};
