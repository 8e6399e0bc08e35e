// Runs an unpacked Box with Node's WASI (preview1): the plain runner for WASI commands, and the ruby.wasm runner.
//
// Isolation: `runPlanIsolated` runs the module in a child process. A trap or proc_exit is just an exception, but
// V8 itself can die under some modules (ruby.wasm with certain preopens segfaults, see runRuby), a module can
// grow memory to 4 GiB, and WASI writes straight to the process's fds: a worker thread shares all of that with
// its caller, a child process shares none. `boxproxy run` is itself a process with nothing else to protect, so
// the CLI runs the plan in-process (`runPlanInProcess`) and its exit code is the module's.
import { spawn } from 'node:child_process';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { isAbsolute, join, posix, resolve, sep } from 'node:path';
import type { WASI as WasiClass } from 'node:wasi';
import { BoxError, type UnpackedBox } from './layout.js';
import { LABEL_DIRS, RUNNER_RUBY, type BoxDirMapping, type BoxRunnerName } from './format.js';

/** Exit status of a module that trapped: what wasmtime reports on Unix (128 + SIGABRT). */
export const TRAP_EXIT_CODE = 134;

export interface RunOptions {
  /** Arguments replacing the Box's Cmd, like `docker run IMAGE args…`; undefined keeps Cmd. */
  args?: string[];
  /** `K=V` sets, `K` passes the caller's value of K (unset when the caller has none), like `docker run --env`. */
  env?: string[];
  /** `host:guest` directories to preopen, like `docker run -v`; guest defaults to host. */
  dirs?: string[];
}

/** Everything a run needs, serializable so a child process can execute it. */
export interface RunPlan {
  runner: BoxRunnerName;
  /** Host path of the module file (inside the rootfs). */
  modulePath: string;
  /** WASI argv, argv[0] being the module path inside the Box. */
  args: string[];
  env: Record<string, string>;
  /** guest path -> host directory. */
  preopens: Record<string, string>;
  workingDir: string;
  /** Things the caller may want to tell the user (ignored mappings and the like). */
  warnings: string[];
}

/** Resolves `guestPath` inside the rootfs, following symlinks, and refuses what lands outside it. */
async function insideRootfs(rootfs: string, guestPath: string): Promise<string | undefined> {
  const root = await realpath(rootfs);
  let real: string;
  try {
    real = await realpath(join(root, posix.normalize('/' + guestPath)));
  } catch {
    return undefined;
  }
  return real === root || real.startsWith(root + sep) ? real : undefined;
}

function parseEnv(list: readonly string[]): Map<string, string> {
  const env = new Map<string, string>();
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq > 0) env.set(item.slice(0, eq), item.slice(eq + 1));
  }
  return env;
}

/** Parses `host:guest` (guest defaults to host); the host side is resolved against the caller's cwd. */
export function parseDirOption(value: string): { host: string; guest: string } {
  const parts = value.split(':');
  if (parts.length > 3 || parts.some((p) => p === '')) throw new BoxError(`--dir ${value}: expected host[:guest]`);
  if (parts.length === 3) {
    // Node's WASI has no read-only preopens; silently granting write access would be worse than refusing.
    throw new BoxError(`--dir ${value}: mount options (${parts[2]}) are not supported; node:wasi preopens are read-write`);
  }
  const host = resolve(parts[0] as string);
  const guest = parts[1] ?? host;
  if (!isAbsolute(guest)) throw new BoxError(`--dir ${value}: the guest path must be absolute`);
  return { host, guest: posix.normalize(guest) };
}

/** Builds the run: argv from Entrypoint + (args ?? Cmd), env from the config plus overrides, preopens. */
export async function planRun(unpacked: UnpackedBox, opts: RunOptions = {}): Promise<RunPlan> {
  const { box, rootfs } = unpacked;
  const cfg = box.config.config ?? {};
  const warnings: string[] = [];
  const entrypoint = cfg.Entrypoint ?? [];
  const [moduleRef = '', ...fixedArgs] = entrypoint;
  // runwasi allows `module.wasm#export`; only the command entry point is supported here.
  const hash = moduleRef.indexOf('#');
  const moduleGuestPath = hash === -1 ? moduleRef : moduleRef.slice(0, hash);
  const exportName = hash === -1 ? '_start' : moduleRef.slice(hash + 1);
  if (exportName !== '_start') throw new BoxError(`the Box's entrypoint names export ${exportName}; only _start is supported`);
  const modulePath = await insideRootfs(rootfs, moduleGuestPath);
  if (!modulePath) throw new BoxError(`the Box's module ${moduleGuestPath} is not a file inside its rootfs`);
  if (!(await stat(modulePath)).isFile()) throw new BoxError(`the Box's module ${moduleGuestPath} is not a file`);
  const args = [moduleGuestPath, ...fixedArgs, ...(opts.args ?? cfg.Cmd ?? [])];

  const workingDir = cfg.WorkingDir || '/';
  const env = parseEnv(cfg.Env ?? []);
  // WASI preview1 has no working directory; PWD is how a module (or its libc start-up) can learn it.
  env.set('PWD', workingDir);
  for (const item of opts.env ?? []) {
    const eq = item.indexOf('=');
    if (eq > 0) env.set(item.slice(0, eq), item.slice(eq + 1));
    else if (eq === -1 && item !== '') {
      const value = process.env[item];
      if (value === undefined) env.delete(item);
      else env.set(item, value);
    } else throw new BoxError(`--env ${item}: expected K=V or K`);
  }

  const preopens: Record<string, string> = {};
  if (box.runner === RUNNER_RUBY) {
    // ruby.wasm under node:wasi crashes V8 when a non-empty directory is preopened as "/"; each top-level
    // directory at its own path gives the same view of the rootfs.
    const root = await realpath(rootfs);
    for (const entry of await readdir(root, { withFileTypes: true })) {
      const host = await insideRootfs(root, entry.name);
      if (host && host !== root && (await stat(host)).isDirectory()) preopens['/' + entry.name] = host;
    }
  } else {
    preopens['/'] = await realpath(rootfs);
  }
  const mapped = cfg.Labels?.[LABEL_DIRS];
  if (mapped) {
    let mappings: BoxDirMapping[] = [];
    try {
      mappings = JSON.parse(mapped) as BoxDirMapping[];
    } catch {
      warnings.push(`label ${LABEL_DIRS} is not JSON; ignored`);
    }
    for (const m of Array.isArray(mappings) ? mappings : []) {
      if (typeof m?.guest !== 'string' || typeof m?.path !== 'string' || !m.guest.startsWith('/')) continue;
      const host = await insideRootfs(rootfs, m.path);
      if (host && (await stat(host)).isDirectory()) preopens[posix.normalize(m.guest)] = host;
      else warnings.push(`${m.path} (mapped to ${m.guest}) is not a directory in the Box; not preopened`);
    }
  }
  for (const d of opts.dirs ?? []) {
    const { host, guest } = parseDirOption(d);
    let isDir = false;
    try {
      isDir = (await stat(host)).isDirectory();
    } catch {
      // reported below
    }
    if (!isDir) throw new BoxError(`--dir ${d}: ${host} is not a directory`);
    preopens[guest] = host;
  }
  return { runner: box.runner, modulePath, args, env: Object.fromEntries(env), preopens, workingDir, warnings };
}

/** node:wasi, without the ExperimentalWarning it prints on first load (it would land in the module's stderr). */
async function loadWasi(): Promise<typeof WasiClass> {
  const emitWarning = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const text = typeof warning === 'string' ? warning : warning.message;
    if (/WASI/.test(text)) return;
    (emitWarning as (w: string | Error, ...r: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    return (await import('node:wasi')).WASI;
  } finally {
    process.emitWarning = emitWarning;
  }
}

function reportTrap(plan: RunPlan, err: Error): number {
  process.stderr.write(`boxproxy: ${plan.args[0]} trapped: ${err.message}\n`);
  return TRAP_EXIT_CODE;
}

export interface InProcessOptions {
  /**
   * End this process with the module's status as soon as the module exits, from inside the module's proc_exit
   * call (the ruby.wasm runner; see runRuby). Only for a process that exists to run the module: the CLI and
   * runPlanIsolated's child.
   */
  exitProcess?: boolean;
}

/** Runs the plan in this process; resolves to the module's exit status (unless exitProcess ended the process). */
export async function runPlanInProcess(plan: RunPlan, opts: InProcessOptions = {}): Promise<number> {
  if (plan.runner === RUNNER_RUBY) return runRuby(plan, opts.exitProcess ?? false);
  const WASI = await loadWasi();
  const module = await WebAssembly.compile(await readFile(plan.modulePath));
  const wasi = new WASI({ version: 'preview1', args: plan.args, env: plan.env, preopens: plan.preopens, returnOnExit: true });
  let instance: WebAssembly.Instance;
  try {
    instance = await WebAssembly.instantiate(module, wasi.getImportObject() as WebAssembly.Imports);
  } catch (err) {
    throw new BoxError(`cannot instantiate ${plan.args[0]}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return wasi.start(instance);
  } catch (err) {
    if (err instanceof WebAssembly.RuntimeError) return reportTrap(plan, err);
    throw err;
  }
}

/** proc_exit from inside ruby.wasm (Kernel#exit!, C-level exit): unwinds the VM and carries the status. */
class ProcExit extends Error {
  constructor(readonly code: number) {
    super(`proc_exit(${code})`);
  }
}

export interface RubyCommand {
  loadPaths: string[];
  requires: string[];
  /** -e programs; when present there is no script. */
  evals: string[];
  script?: string;
  scriptArgs: string[];
  chdir?: string;
  verbose: boolean | undefined;
}

/** The subset of ruby's command line that makes sense without a terminal: -e -I -r -C -w -W -E --. */
export function parseRubyArgs(args: readonly string[]): RubyCommand {
  const cmd: RubyCommand = { loadPaths: [], requires: [], evals: [], scriptArgs: [], verbose: undefined };
  let i = 0;
  const value = (flag: string, attached: string): string => {
    if (attached !== '') return attached;
    const v = args[++i];
    if (v === undefined) throw new BoxError(`ruby ${flag} needs a value`);
    return v;
  };
  for (; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-') || a === '-') break;
    const flag = a.slice(0, 2);
    const rest = a.slice(2);
    if (a.startsWith('--')) {
      if (/^--(disable|enable)[-=]/.test(a) || a === '--jit' || a.startsWith('--yjit') || a.startsWith('--encoding=')) continue;
      if (a === '--verbose') cmd.verbose = true;
      else if (a === '--encoding' || a === '--external-encoding' || a === '--internal-encoding') value(a, '');
      else throw new BoxError(`ruby option ${a} is not supported by the ruby.wasm runner`);
      continue;
    }
    switch (flag) {
      case '-e':
        cmd.evals.push(value(flag, rest));
        break;
      case '-I':
        cmd.loadPaths.push(value(flag, rest));
        break;
      case '-r':
        cmd.requires.push(value(flag, rest));
        break;
      case '-C':
        cmd.chdir = value(flag, rest);
        break;
      case '-E':
        value(flag, rest);
        break;
      case '-w':
        cmd.verbose = true;
        break;
      case '-W':
        cmd.verbose = rest === '0' ? undefined : rest === '1' ? false : true;
        break;
      case '-U':
        break;
      default:
        throw new BoxError(`ruby option ${a} is not supported by the ruby.wasm runner`);
    }
  }
  const rest = args.slice(i);
  if (cmd.evals.length === 0) {
    const script = rest[0];
    if (script === undefined || script === '-') throw new BoxError('the Ruby command names no script (reading a program from stdin is not supported)');
    cmd.script = script;
    cmd.scriptArgs = rest.slice(1);
  } else {
    cmd.scriptArgs = [...rest];
  }
  return cmd;
}

/** A Ruby string literal for any text (hex-packed: no quoting or interpolation to get wrong). */
function rubyString(s: string): string {
  return `["${Buffer.from(s, 'utf8').toString('hex')}"].pack("H*").force_encoding(Encoding::UTF_8)`;
}

function rubyArray(list: readonly string[]): string {
  return `[${list.map(rubyString).join(', ')}]`;
}

/** The Ruby program that does what `ruby <args>` would, then ends the module with its status (exit!). */
export function rubyPrelude(cmd: RubyCommand, workingDir: string): string {
  const lines = [
    'begin',
    cmd.verbose === undefined ? '  $VERBOSE = nil' : `  $VERBOSE = ${cmd.verbose}`,
    `  __boxproxy_wd = ${rubyString(workingDir)}`,
    '  Dir.chdir(__boxproxy_wd) if File.directory?(__boxproxy_wd)',
    ...(cmd.chdir ? [`  Dir.chdir(${rubyString(cmd.chdir)})`] : []),
    `  $LOAD_PATH.unshift(*${rubyArray(cmd.loadPaths)})`,
    `  ${rubyArray(cmd.requires)}.each { |lib| require lib }`,
    `  ARGV.replace(${rubyArray(cmd.scriptArgs)})`,
  ];
  if (cmd.script !== undefined) {
    lines.push(`  $0 = ${rubyString(cmd.script)}`, '  load($0)');
  } else {
    lines.push(`  $0 = "-e"`, `  TOPLEVEL_BINDING.eval(${rubyString(cmd.evals.join('\n'))}, "-e", 1)`);
  }
  lines.push(
    '  0',
    'rescue SystemExit => e',
    '  e.status',
    'rescue Exception => e',
    '  $stderr.write(e.full_message(highlight: false))',
    '  1',
    'ensure',
    // Ruby buffers $stdout; nothing flushes it once eval returns.
    '  $stdout.flush rescue nil',
    '  $stderr.flush rescue nil',
    'end',
  );
  return `__boxproxy_status = ${lines.join('\n')}\nexit!(__boxproxy_status)`;
}

/**
 * Runs a ruby.wasm Box: the module is a WASI reactor driven by @ruby/wasm-wasi; Entrypoint[1..] + Cmd are
 * ruby's own command line (`ruby /app/main.rb args…` with the interpreter replaced by the module).
 *
 * The prelude ends with `exit!(status)`, i.e. proc_exit. Returning from a ruby.wasm eval into V8 crashes the
 * process now and then (SIGSEGV in the interpreter entry trampoline; Node 20.20, @ruby/3.3-wasm-wasi 2.10.1),
 * after the script's output is complete; ending the process inside proc_exit never returns there (12 runs of 12
 * here, against about half crashing otherwise). Without exitProcess the status travels as an exception instead.
 */
async function runRuby(plan: RunPlan, exitProcess: boolean): Promise<number> {
  const command = parseRubyArgs(plan.args.slice(1));
  const [WASI, { RubyVM }, module] = await Promise.all([
    loadWasi(),
    import('@ruby/wasm-wasi'),
    readFile(plan.modulePath).then((bytes) => WebAssembly.compile(bytes)),
  ]);
  const wasi = new WASI({ version: 'preview1', args: ['ruby', ...plan.args.slice(1)], env: plan.env, preopens: plan.preopens });
  const wasiImport = {
    ...(wasi.wasiImport as Record<string, unknown>),
    proc_exit: (code: number): never => {
      if (exitProcess) process.exit(code);
      throw new ProcExit(code);
    },
  } as WebAssembly.ModuleImports;
  try {
    const { vm } = await RubyVM.instantiateModule({
      module,
      wasip1: { wasiImport, initialize: (instance: WebAssembly.Instance) => wasi.initialize(instance) },
    });
    vm.eval(rubyPrelude(command, plan.workingDir));
    throw new BoxError('the Ruby prelude returned without exiting');
  } catch (err) {
    if (err instanceof ProcExit) return err.code;
    if (err instanceof WebAssembly.RuntimeError) return reportTrap(plan, err);
    throw err;
  }
}

export interface IsolatedRunOptions {
  /** 'inherit' (default) passes this process's stdio; 'pipe' collects stdout and stderr. */
  stdio?: 'inherit' | 'pipe';
  /** Sent to the module's stdin (with stdio 'pipe'). */
  input?: string | Buffer;
  /** The child is killed after this long. */
  timeoutMs?: number;
  /** The child is killed when its resident memory passes this (checked every 100 ms; Linux only). */
  maxRssBytes?: number;
}

export interface IsolatedRunResult {
  /** The module's exit status; 128 + signal number when the child process died of a signal. */
  exitCode: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Set when a limit ended the run. */
  killed?: 'timeout' | 'memory';
}

/** Resident memory of a process in bytes, from /proc (undefined where there is none). */
async function residentBytes(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
    return kb ? Number(kb) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

const RSS_POLL_MS = 100;

/** Kills `child` when it runs past the limits; says which limit, if one did. */
function watchLimits(child: ReturnType<typeof spawn>, opts: IsolatedRunOptions): { killed: () => 'timeout' | 'memory' | undefined; stop: () => void } {
  let killed: 'timeout' | 'memory' | undefined;
  const kill = (why: 'timeout' | 'memory'): void => {
    killed ??= why;
    child.kill('SIGKILL');
  };
  const timer = opts.timeoutMs !== undefined ? setTimeout(() => kill('timeout'), opts.timeoutMs) : undefined;
  const max = opts.maxRssBytes;
  const poll =
    max !== undefined && child.pid !== undefined
      ? setInterval(() => {
          void residentBytes(child.pid as number).then((rss) => {
            if (rss !== undefined && rss > max) kill('memory');
          });
        }, RSS_POLL_MS)
      : undefined;
  return {
    killed: () => killed,
    stop: () => {
      if (timer) clearTimeout(timer);
      if (poll) clearInterval(poll);
    },
  };
}

/** How to start this module's child entry from here (src/ through tsx in development, dist/ when built). */
function childCommand(): { entry: string; execArgv: string[] } {
  const here = import.meta.url;
  const ts = here.endsWith('.ts');
  const entry = new URL(`./run-child.${ts ? 'ts' : 'js'}`, here).pathname;
  // Keep the caller's loaders (tsx under tests), drop what would make the child a test runner or debugger.
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--test') && !a.startsWith('--inspect') && !a.startsWith('--watch'));
  if (ts && !execArgv.some((a) => a.includes('tsx'))) execArgv.push('--import', import.meta.resolve('tsx'));
  execArgv.push('--disable-warning=ExperimentalWarning');
  return { entry, execArgv };
}

/** Runs the plan in a child process, so nothing the module does can take down the caller. */
export async function runPlanIsolated(plan: RunPlan, opts: IsolatedRunOptions = {}): Promise<IsolatedRunResult> {
  const { entry, execArgv } = childCommand();
  const pipe = opts.stdio === 'pipe';
  const child = spawn(process.execPath, [...execArgv, entry], {
    stdio: pipe ? ['pipe', 'pipe', 'pipe', 'ipc'] : ['inherit', 'inherit', 'inherit', 'ipc'],
  });
  let stdout = '';
  let stderr = '';
  if (pipe) {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin?.end(opts.input ?? '');
  }
  const limits = watchLimits(child, opts);
  child.send(plan);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolvePromise, reject) => {
    child.once('error', reject);
    child.once('close', (c, s) => resolvePromise([c, s]));
  }).finally(() => limits.stop());
  const exitCode = code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0);
  const killed = limits.killed();
  return { exitCode, signal, stdout, stderr, ...(killed ? { killed } : {}) };
}
