import { describeKind, envValue, mergeEnv } from '../detect.js';
import { LABEL_DIRS } from '../../box/format.js';
import { clampPath, joinPath } from '../vfs.js';
import { checkWasiCommand } from '../wasm-imports.js';
import { basename, splitArgs, type PlanOutcome, type Strategy, type StrategyContext } from './types.js';

export type WasmRuntimeName = 'wasmtime' | 'wasmedge' | 'wasmer' | 'iwasm' | 'wasm3';

/** A directory the runtime would preopen: `path` inside the container seen at `guest` by the module. */
export interface DirMapping {
  guest: string;
  path: string;
}

export interface RuntimeCommand {
  runtime: WasmRuntimeName;
  /** The module as written on the command line. */
  module: string;
  /** Index in argv of the module's first argument. */
  argsIndex: number;
  /** NAME=value, or NAME alone meaning "the container's value". */
  env: string[];
  /** The runtime passes the whole container environment (wasmtime -S inherit-env, wasmer --forward-host-env). */
  inheritEnv: boolean;
  dirs: DirMapping[];
  notes: string[];
}

export type RuntimeParse = { ok: true; command: RuntimeCommand } | { ok: false; reason: string };

interface FlagTable {
  /** Flags taking a value (as the next word or after '='). */
  valued: ReadonlySet<string>;
  /** Flags that change what is run, so the Box cannot mean the same. */
  refused: ReadonlyMap<string, string>;
  subcommands: { run: ReadonlySet<string>; other: ReadonlySet<string> };
  /** wasmer takes its module's arguments after `--`. */
}

const TABLES: Record<WasmRuntimeName, FlagTable> = {
  wasmtime: {
    valued: new Set([
      '--dir', '--mapdir', '--env', '--invoke', '--preload', '--argv0', '--fuel', '--max-wasm-stack', '--wasm-timeout',
      '--profile', '--tcplisten', '--config', '--target', '--wasm-features', '--wasi-modules', '--cranelift-set',
      '--cranelift-enable', '--opt-level', '-W', '-S', '-O', '-C', '-D', '--wasm', '--wasi', '--optimize', '--codegen', '--debug',
    ]),
    refused: new Map([
      ['--invoke', 'calls a function other than _start (--invoke)'],
      ['--preload', 'links extra modules (--preload)'],
    ]),
    subcommands: { run: new Set(['run']), other: new Set(['compile', 'serve', 'explore', 'wast', 'settings', 'config', 'help', 'completion']) },
  },
  wasmedge: {
    valued: new Set(['--dir', '--env', '--gas-limit', '--memory-page-limit', '--time-limit', '--forbidden-plugin', '--optimize']),
    refused: new Map([['--reactor', 'runs the module as a reactor (--reactor)']]),
    subcommands: { run: new Set(['run']), other: new Set(['compile', 'parse', 'validate', 'instantiate']) },
  },
  wasmer: {
    valued: new Set(['--dir', '--mapdir', '--env', '--invoke', '-i', '--entrypoint', '--command-name', '--use', '--stack-size', '--registry', '--cache-key']),
    refused: new Map([
      ['--invoke', 'calls a function other than _start (--invoke)'],
      ['-i', 'calls a function other than _start (-i)'],
      ['--entrypoint', 'selects another entrypoint (--entrypoint)'],
      ['--use', 'adds packages to the run (--use)'],
    ]),
    subcommands: { run: new Set(['run']), other: new Set(['create-exe', 'compile', 'inspect', 'validate', 'publish', 'login', 'cache', 'config', 'init', 'app', 'package']) },
  },
  iwasm: {
    valued: new Set(['--dir', '--map-dir', '--env', '--stack-size', '--heap-size', '-v', '--addr-pool', '--allow-resolve', '--max-threads', '-f', '--function', '--native-lib', '--jit-codecache-size', '--gc-heap-size']),
    refused: new Map([
      ['-f', 'calls a function other than _start (-f)'],
      ['--function', 'calls a function other than _start (--function)'],
      ['--native-lib', 'loads native libraries (--native-lib)'],
      ['--repl', 'starts a REPL (--repl)'],
    ]),
    subcommands: { run: new Set(), other: new Set() },
  },
  wasm3: {
    valued: new Set(['--func', '-f', '--stack-size', '--gas-limit']),
    refused: new Map([
      ['--func', 'calls a function other than _start (--func)'],
      ['-f', 'calls a function other than _start (-f)'],
      ['--repl', 'starts a REPL (--repl)'],
      ['--compile', 'compiles instead of running (--compile)'],
    ]),
    subcommands: { run: new Set(), other: new Set() },
  },
};

export function runtimeName(path: string): WasmRuntimeName | undefined {
  const name = basename(path);
  return name in TABLES ? (name as WasmRuntimeName) : undefined;
}

/**
 * Parses `<runtime> [run] [flags] <module> [args]` for the runtime named by argv[0]. Directory mappings keep
 * the runtime's own syntax: wasmtime `--dir HOST[::GUEST]` and `--mapdir GUEST::HOST`, wasmedge
 * `--dir GUEST:HOST`, wasmer `--mapdir GUEST:HOST`, iwasm `--map-dir=GUEST::HOST`.
 */
export function parseRuntimeCommand(argv: readonly string[], runtimeOverride?: WasmRuntimeName): RuntimeParse {
  const runtime = runtimeOverride ?? runtimeName(argv[0] ?? '');
  if (!runtime) return { ok: false, reason: `${argv[0]} is not a known Wasm runtime` };
  const table = TABLES[runtime];
  const command: RuntimeCommand = { runtime, module: '', argsIndex: 0, env: [], inheritEnv: false, dirs: [], notes: [] };
  let i = 1;
  const first = argv[1];
  if (first !== undefined && table.subcommands.run.has(first)) i = 2;
  else if (first !== undefined && table.subcommands.other.has(first)) return { ok: false, reason: `\`${runtime} ${first}\` does not run a module` };
  for (; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') break;
    const eq = arg.indexOf('=');
    // Short flags take their value attached too (-Sinherit-env), long ones after '='.
    let flag = eq > 0 && arg.startsWith('--') ? arg.slice(0, eq) : arg;
    let value: string | undefined = eq > 0 && arg.startsWith('--') ? arg.slice(eq + 1) : undefined;
    if (value === undefined && /^-[A-Za-z]./.test(arg) && table.valued.has(arg.slice(0, 2))) {
      flag = arg.slice(0, 2);
      value = arg.slice(2).replace(/^=/, '');
    }
    if (value === undefined && eq > 0 && !arg.startsWith('--') && table.valued.has(arg.slice(0, eq))) {
      flag = arg.slice(0, eq);
      value = arg.slice(eq + 1);
    }
    const refusal = table.refused.get(flag);
    if (refusal) return { ok: false, reason: `the ${runtime} command ${refusal}` };
    if (table.valued.has(flag) && value === undefined) {
      value = argv[++i];
      if (value === undefined) return { ok: false, reason: `${runtime} flag ${flag} has no value` };
    }
    const problem = applyFlag(runtime, flag, value, command);
    if (problem) return { ok: false, reason: problem };
  }
  const module = argv[i];
  if (module === undefined) return { ok: false, reason: `the ${runtime} command names no module` };
  command.module = module;
  command.argsIndex = i + 1;
  // wasmer separates the module's arguments with `--`.
  if (runtime === 'wasmer' && argv[i + 1] === '--') command.argsIndex = i + 2;
  return { ok: true, command };
}

function applyFlag(runtime: WasmRuntimeName, flag: string, value: string | undefined, cmd: RuntimeCommand): string | undefined {
  if (value === undefined) {
    if (runtime === 'wasmer' && flag === '--forward-host-env') cmd.inheritEnv = true;
    else cmd.notes.push(`${runtime} flag ${flag} ignored`);
    return undefined;
  }
  switch (flag) {
    case '--env':
      cmd.env.push(value);
      return undefined;
    case '--dir': {
      if (runtime === 'wasmtime') {
        const [host, guest] = value.split('::');
        cmd.dirs.push({ path: host as string, guest: guest ?? (host as string) });
      } else if (runtime === 'wasmedge') {
        // wasmedge: GUEST:HOST, or one path used for both.
        const at = value.indexOf(':');
        cmd.dirs.push(at === -1 ? { guest: value, path: value } : { guest: value.slice(0, at), path: value.slice(at + 1) });
      } else cmd.dirs.push({ guest: value, path: value });
      return undefined;
    }
    case '--mapdir':
    case '--map-dir': {
      const sep = runtime === 'wasmer' && !value.includes('::') ? ':' : '::';
      const at = value.indexOf(sep);
      if (at === -1) return `${runtime} ${flag} ${value} is not GUEST${sep}HOST`;
      cmd.dirs.push({ guest: value.slice(0, at), path: value.slice(at + sep.length) });
      return undefined;
    }
    case '-S':
    case '--wasi':
      for (const opt of value.split(',')) {
        if (/^inherit-env(=(y|yes|true))?$/.test(opt)) cmd.inheritEnv = true;
        else if (/^(tcplisten|inherit-network|allow-ip-name-lookup)/.test(opt)) cmd.notes.push(`wasmtime -S ${opt} ignored (no sockets under Node's WASI)`);
      }
      return undefined;
    default:
      cmd.notes.push(`${runtime} flag ${flag} ${value} ignored`);
      return undefined;
  }
}

function absolute(path: string, cwd: string): string {
  return joinPath(clampPath(path, clampPath(cwd)));
}

/** argv[0] is a Wasm runtime CLI given a module: the module becomes the entrypoint, the runtime is dropped. */
export const wasmRuntimeWrapper: Strategy = {
  name: 'wasm-runtime-wrapper',
  async plan(ctx: StrategyContext): Promise<PlanOutcome> {
    const { detection, fs } = ctx;
    const target = detection.target;
    if (!target) return { reason: detection.problem ?? 'no entrypoint' };
    const runtime = runtimeName(target.requested) ?? runtimeName(target.resolvedPath);
    if (!runtime) return { reason: `${target.path} is not a Wasm runtime (wasmtime, wasmedge, wasmer, iwasm, wasm3)` };
    const parsed = parseRuntimeCommand(detection.argv, runtime);
    if (!parsed.ok) return { reason: parsed.reason, recognized: true };
    const command = parsed.command;
    const modulePath = absolute(command.module, detection.workingDir);
    const hit = fs.resolve(modulePath);
    if (!hit.ok || hit.node.type !== 'file') return { reason: `the ${runtime} module ${modulePath} is not a file in the image`, recognized: true };
    const inode = hit.node.inode;
    if (inode.kind.kind !== 'wasm-module') return { reason: `the ${runtime} module ${modulePath} is ${describeKind(inode.kind)}`, recognized: true };
    const check = checkWasiCommand(await ctx.readFile(inode));
    if (!check.ok) return { reason: `the ${runtime} module ${modulePath} is a Wasm core module that ${check.reason}`, recognized: true };

    // The runtimes pass only what --env names; the container's own environment stays outside the module.
    const explicit = command.env.map((e) => (e.includes('=') ? e : `${e}=${envValue(detection.env, e) ?? ''}`));
    const env = command.inheritEnv ? mergeEnv(detection.env, explicit) : explicit;
    const labels: Record<string, string> = {};
    const mapped = command.dirs
      .map((d) => ({ guest: absolute(d.guest, detection.workingDir), path: absolute(d.path, detection.workingDir) }))
      .filter((d) => d.guest !== d.path);
    if (mapped.length > 0) labels[LABEL_DIRS] = JSON.stringify(mapped);
    const { fixed, cmd } = splitArgs(detection.argv, detection.entrypointCount, command.argsIndex);
    return {
      strategy: 'wasm-runtime-wrapper',
      runner: 'wasi',
      modules: [{ boxPath: hit.path, from: { kind: 'image', inode, imagePath: hit.path }, mode: inode.mode | 0o555 }],
      entrypoint: [hit.path, ...fixed],
      cmd,
      env,
      workingDir: detection.workingDir,
      labels,
      excludePaths: [hit.path],
      notes: [`unwrapped ${runtime} (${target.path}); the native runtime is not in the Box`, ...command.notes],
    };
  },
};
