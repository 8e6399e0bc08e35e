// Child processes for the corpus builder: output to a log (long apt runs) or collected (short queries).
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';

export interface ExecOptions {
  /** Appends stdout and stderr here instead of collecting them. */
  log?: string;
  env?: NodeJS.ProcessEnv;
  input?: string;
  allowFailure?: boolean;
  timeoutMs?: number;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

const TAIL_CHARS = 4000;

export async function exec(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const log = opts.log ? createWriteStream(opts.log, { flags: 'a' }) : undefined;
  if (log) log.write(`$ ${cmd} ${args.join(' ')}\n`);
  const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  if (opts.input !== undefined && child.stdin) {
    // A command that exits without reading its input is not an error here; its exit status says how it went.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input);
  }
  let stdout = '';
  let stderr = '';
  let tail = '';
  const keep = (d: string): void => {
    tail = (tail + d).slice(-TAIL_CHARS);
  };
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (log ? (log.write(d), keep(d)) : (stdout += d)));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (log ? (log.write(d), keep(d)) : (stderr += d)));
  const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
  const code = await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, signal) => resolve(c ?? (signal ? 128 : -1)));
  });
  if (timer) clearTimeout(timer);
  if (log) await new Promise<void>((resolve) => log.end(resolve));
  if (code !== 0 && !opts.allowFailure) {
    const detail = (log ? tail : stderr || stdout).trim().split('\n').slice(-25).join('\n');
    throw new Error(`${cmd} ${args.slice(0, 12).join(' ')}${args.length > 12 ? ' …' : ''} failed (exit ${code})${opts.log ? ` (log: ${opts.log})` : ''}:\n${detail}`);
  }
  return { code, stdout, stderr: log ? tail : stderr };
}

export async function execText(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<string> {
  return (await exec(cmd, args, opts)).stdout;
}
