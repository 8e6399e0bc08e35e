// Process, port and temp-dir plumbing shared by the integration helpers.
// Every child process is tracked so that a crashing test run still kills it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Debian package providing each external tool, for error messages that say what to install. */
export const TOOL_PACKAGES: Readonly<Record<string, string>> = {
  'docker-registry': 'docker-registry',
  skopeo: 'skopeo',
  containerd: 'containerd',
  ctr: 'containerd',
  htpasswd: 'apache2-utils',
  openssl: 'openssl',
  wrk: 'wrk',
  igzip: 'isal',
};

const foundTools = new Set<string>();

export function hasTool(bin: string): boolean {
  if (foundTools.has(bin)) return true;
  const found = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', bin], { stdio: 'ignore' }).status === 0;
  if (found) foundTools.add(bin);
  return found;
}

export class MissingToolError extends Error {
  constructor(readonly tools: string[]) {
    const pkgs = [...new Set(tools.map((t) => TOOL_PACKAGES[t] ?? t))];
    super(`missing ${tools.join(', ')}: install the Debian package(s) ${pkgs.join(' ')} (bash test/setup/deps.sh does)`);
    this.name = 'MissingToolError';
  }
}

/**
 * The `skip` value for a suite needing these tools: a reason string when one
 * is missing, false when all are there. Under CI a missing tool is a failure,
 * never a skip, so this throws.
 */
export function skipUnlessTools(...tools: string[]): string | false {
  const missing = tools.filter((t) => !hasTool(t));
  if (missing.length === 0) return false;
  if (process.env.CI) throw new MissingToolError(missing);
  return new MissingToolError(missing).message;
}

/** Throws naming the package when a binary is absent (used right before spawning it). */
export function requireTool(bin: string): void {
  if (!hasTool(bin)) throw new MissingToolError([bin]);
}

/** A port that was free a moment ago on 127.0.0.1 (the caller binds it right away). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const tempDirs = new Set<string>();

export async function makeTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `boxproxy-${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

export async function removeTempDir(dir: string): Promise<void> {
  tempDirs.delete(dir);
  await rm(dir, { recursive: true, force: true });
}

export interface ManagedProcess {
  readonly child: ChildProcess;
  readonly name: string;
  /** File receiving the process's stdout and stderr. */
  readonly logFile: string;
  readonly exited: boolean;
  /** The log so far (for error messages and log parsing). */
  log(): Promise<string>;
  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

const running = new Set<ChildProcess>();
// Last resort when a test crashes before its cleanup: no process or temp dir outlives the run.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** Spawns `cmd` with stdout and stderr appended to `logFile` (separate files when `stdoutFile` is set). */
export async function startProcess(
  name: string,
  cmd: string,
  args: readonly string[],
  opts: { logFile: string; stdoutFile?: string; cwd?: string; env?: NodeJS.ProcessEnv },
): Promise<ManagedProcess> {
  requireTool(cmd);
  const errHandle = await open(opts.logFile, 'a');
  const outHandle = opts.stdoutFile ? await open(opts.stdoutFile, 'a') : errHandle;
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', outHandle.fd, errHandle.fd],
  });
  // The child has its own copies of the descriptors now.
  await errHandle.close();
  if (outHandle !== errHandle) await outHandle.close();
  running.add(child);
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      running.delete(child);
      resolve();
    });
    child.once('error', () => {
      exited = true;
      running.delete(child);
      resolve();
    });
  });
  return {
    child,
    name,
    logFile: opts.logFile,
    get exited() {
      return exited;
    },
    log: async () => readFile(opts.logFile, 'utf8').catch(() => ''),
    async stop(graceMs = 5000) {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(timer);
    },
  };
}

/** Polls `probe` until it returns true; fails with the process log when the process dies or time runs out. */
export async function waitUntil(
  what: string,
  probe: () => Promise<boolean>,
  opts: { proc?: ManagedProcess; timeoutMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  for (;;) {
    if (opts.proc?.exited) {
      throw new Error(`${opts.proc.name} exited before ${what}; its log:\n${tail(await opts.proc.log())}`);
    }
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) {
      const log = opts.proc ? `; ${opts.proc.name} log:\n${tail(await opts.proc.log())}` : '';
      throw new Error(`timed out waiting for ${what}${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function tail(text: string, lines = 30): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; rejects with its stderr unless `allowFailure`. */
export async function run(
  cmd: string,
  args: readonly string[],
  opts: { allowFailure?: boolean; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult> {
  requireTool(cmd);
  const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => err.push(b));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  running.delete(child);
  const result = { code: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
  if (result.code !== 0 && !opts.allowFailure) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${signal ?? `exit ${result.code}`}):\n${tail(result.stderr || result.stdout)}`);
  }
  return result;
}
