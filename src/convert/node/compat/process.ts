// node:process: argv/env/cwd/exit codes from WASI, the image's Node version, 'exit'/'beforeExit' events and
// Node's handling of uncaught exceptions.
import { EventEmitter } from 'events';
import { parseCommand } from './command.js';
import { config } from './config.js';
import { codedError } from './errors.js';
import { handlesCreated, setLoopHooks } from './loop.js';
import { os, std } from './quickjs.js';
import { ReadStream, WriteStream } from './stdio.js';

declare const scriptArgs: string[];

const started = os.now();

class Process extends EventEmitter {
  readonly title = 'node';
  readonly version = config.nodeVersion;
  readonly versions: Record<string, string> = { node: config.nodeVersion.replace(/^v/, ''), quickjs: '2025-04-26' };
  readonly release = { name: 'node' };
  readonly platform = 'linux';
  readonly arch = config.arch;
  readonly execPath = config.execPath;
  readonly execArgv: string[];
  readonly pid = 1;
  readonly ppid = 0;
  argv: string[];
  argv0 = 'node';
  env: Record<string, string> = envObject();
  exitCode: number | undefined = undefined;
  readonly stdout = new WriteStream(1);
  readonly stderr = new WriteStream(2);
  readonly stdin = new ReadStream();
  readonly features = {};
  readonly config = { variables: {} };
  private exiting = false;

  constructor() {
    super();
    // qjs's scriptArgs: [bundle, ...the image's command line]; Node's argv: [execPath, script, ...args].
    const command = parseCommand(scriptArgs.slice(1), this.cwd());
    if (!command.ok) {
      // Status 1, as node's own for a script it cannot load (WASI engines refuse statuses above 125).
      this.stderr.write(`boxproxy: ${command.reason}\n`);
      std.exit(1);
    }
    this.argv = [config.execPath, command.script, ...command.args];
    this.execArgv = command.execArgv;
  }

  cwd(): string {
    const [dir, err] = os.getcwd();
    return err ? '/' : dir;
  }

  chdir(dir: string): void {
    const ret = os.chdir(dir);
    if (ret < 0) throw codedError('ENOENT', `ENOENT: no such file or directory, chdir ${this.cwd()} -> '${dir}'`);
  }

  exit(code?: number | string): never {
    if (code !== undefined) this.exitCode = Number(code) | 0;
    if (!this.exiting) {
      this.exiting = true;
      try {
        this.emit('exit', this.exitCode ?? 0);
      } catch (err) {
        printUncaught(err);
        this.exitCode = 7;
      }
    }
    std.exit(this.exitCode ?? 0);
  }

  reallyExit(code: number): never {
    std.exit(code);
  }

  abort(): never {
    std.exit(134);
  }

  nextTick(fn: (...args: unknown[]) => void, ...args: unknown[]): void {
    queueMicrotask(() => fn(...args));
  }

  hrtime = Object.assign(
    (prev?: [number, number]): [number, number] => {
      const ns = Math.round(os.now() * 1e6);
      let s = Math.floor(ns / 1e9);
      let n = ns % 1e9;
      if (prev) {
        s -= prev[0];
        n -= prev[1];
        if (n < 0) {
          s--;
          n += 1e9;
        }
      }
      return [s, n];
    },
    { bigint: (): bigint => BigInt(Math.round(os.now() * 1e6)) },
  );

  uptime(): number {
    return (os.now() - started) / 1000;
  }

  memoryUsage(): { rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number } {
    return { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
  }

  cpuUsage(): { user: number; system: number } {
    return { user: Math.round((os.now() - started) * 1000), system: 0 };
  }

  emitWarning(warning: string | Error, type?: string): void {
    const text = typeof warning === 'string' ? `${type ?? 'Warning'}: ${warning}` : `${warning.name}: ${warning.message}`;
    this.stderr.write(`(node:${this.pid}) ${text}\n`);
  }

  umask(): number {
    return 0o022;
  }
  getuid(): number {
    return 0;
  }
  getgid(): number {
    return 0;
  }
  geteuid(): number {
    return 0;
  }
  getegid(): number {
    return 0;
  }
  binding(name: string): never {
    throw codedError('ERR_INVALID_MODULE', `No such module: ${name}`);
  }
}

/** process.env: the WASI environment, values coerced to strings and written through to the C environment. */
function envObject(): Record<string, string> {
  const target: Record<string, string> = { ...std.getenviron() };
  return new Proxy(target, {
    set(t, name, value) {
      if (typeof name !== 'string') return false;
      t[name] = String(value);
      std.setenv(name, String(value));
      return true;
    },
    deleteProperty(t, name) {
      if (typeof name === 'string') {
        delete t[name];
        std.unsetenv(name);
      }
      return true;
    },
  });
}

function printUncaught(err: unknown): void {
  const text = err instanceof Error ? (err.stack ? `${err.name}: ${err.message}\n${err.stack}` : String(err)) : `Uncaught ${String(err)}`;
  process.stderr.write(`${text}\n\nNode.js ${config.nodeVersion}\n`);
}

export const process = new Process();

let beforeExitAt = -1;
setLoopHooks({
  onIdle() {
    // 'beforeExit' again only when its listeners scheduled work last time; otherwise the process ends.
    if (process.listenerCount('beforeExit') > 0 && beforeExitAt !== handlesCreated()) {
      beforeExitAt = handlesCreated();
      process.emit('beforeExit', process.exitCode ?? 0);
      return true;
    }
    return process.exit();
  },
  onFatal(err) {
    if (process.listenerCount('uncaughtException') > 0) {
      process.emit('uncaughtException', err, 'uncaughtException');
      return;
    }
    printUncaught(err);
    process.exitCode = 1;
    process.exit();
  },
});

export default process;

// Globals before the rest of the layer loads: npm's util reads process.env, @pkgjs/parseargs uses `global`.
(globalThis as unknown as { process: Process; global: typeof globalThis }).process = process;
(globalThis as unknown as { global: typeof globalThis }).global = globalThis;
