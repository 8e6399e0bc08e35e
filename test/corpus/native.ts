// The oracle: a corpus image's own command, run natively the way `docker run --network none IMAGE [args]` runs
// it: its layers stacked with overlayfs under a scratch upper (so the cached image never changes), as root, in
// new mount, PID and network namespaces (no network at all), with the image's Env, WorkingDir and Entrypoint+Cmd.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHROOT_SH, type BuiltImage } from './build.js';

export interface RunOutput {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface NativeRunOptions {
  /** Replace the image's Cmd, like `docker run IMAGE args…`. */
  args?: readonly string[];
  /** `NAME=value` entries set over the image's Env, like `docker run --env`. */
  env?: readonly string[];
  timeoutMs?: number;
}

/** The argv `docker run` executes: Entrypoint followed by the arguments (or Cmd). */
export function dockerArgv(image: BuiltImage, args?: readonly string[]): string[] {
  const c = image.config.config ?? {};
  return [...(c.Entrypoint ?? []), ...(args ?? c.Cmd ?? [])];
}

/** The environment `docker run` gives the process: the image's Env, HOME=/root when unset, then overrides. */
export function dockerEnv(image: BuiltImage, overrides: readonly string[] = []): string[] {
  const env = new Map<string, string>();
  const put = (e: string): void => {
    const eq = e.indexOf('=');
    if (eq > 0) env.set(e.slice(0, eq), e.slice(eq + 1));
  };
  for (const e of image.config.config?.Env ?? []) put(e);
  if (!env.has('HOME')) env.set('HOME', '/root');
  for (const e of overrides) put(e);
  return [...env].map(([k, v]) => `${k}=${v}`);
}

export async function runNative(image: BuiltImage, opts: NativeRunOptions = {}): Promise<RunOutput> {
  const argv = dockerArgv(image, opts.args);
  if (argv.length === 0) throw new Error(`${image.recipe.name} has no Entrypoint or Cmd`);
  const scratch = await mkdtemp(join(tmpdir(), 'boxproxy-native-'));
  try {
    const envFile = join(scratch, 'env');
    await writeFile(envFile, dockerEnv(image, opts.env).map((e) => e + '\0').join(''));
    const wd = image.config.config?.WorkingDir || '/';
    const child = spawn(
      'unshare',
      ['--mount', '--net', '--pid', '--fork', '--kill-child', 'bash', CHROOT_SH, '--lower', image.lowers.join(':'), '--upper', join(scratch, 'upper'),
        '--work', join(scratch, 'work'), '--merged', join(scratch, 'merged'), '--env-file', envFile, '--wd', wd, '--', ...argv],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    const exitCode = await new Promise<number>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : 15)));
    });
    clearTimeout(timer);
    return { exitCode, stdout, stderr };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
