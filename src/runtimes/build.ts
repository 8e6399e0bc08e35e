import { spawn } from 'node:child_process';
import { access, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ANNOTATION_RUNTIME_BUILD_KEY } from './artifact.js';
import { OciRuntimeCatalog } from './catalog.js';
import { defaultRuntimeCacheDir } from './dirs.js';
import { packageBuild } from './package.js';

/** manifest.json written by scripts/runtimes/<name>/build.sh (the fields boxproxy reads). */
export interface RuntimeBuildManifest {
  name: string;
  version: string;
  target: string;
  wasi: string;
  cacheKey: string;
  sourceDateEpoch: number;
  /** `stdlib` and `prefix`: interpreters with a library tree (python); QuickJS has only its module. */
  files: { interpreter: string; stdlib?: string; prefix?: string };
  interpreter: { sha256: string; size: number };
  inputs: {
    script: { path: string; sha256: string };
    sources: Array<{ package: string; version: string; files: Array<{ name: string; sha256: string }> }>;
    toolchain: { clang: string; packages: Record<string, string> };
    flags: Record<string, string[]>;
  };
}

export interface BuiltRuntime {
  /** The build's output directory (python.wasm, lib/, manifest.json). */
  dir: string;
  manifest: RuntimeBuildManifest;
}

export interface BuildOptions {
  /** Default $BOXPROXY_RUNTIME_CACHE, else ~/.cache/boxproxy/runtimes. */
  cacheDir?: string;
  /** Rebuild even when the cache holds this build. */
  force?: boolean;
  /** The script's log lines (stderr); default: discarded. */
  onLog?: (line: string) => void;
  /** Another build script in place of scripts/runtimes/<name>/build.sh (tests of the build plumbing). */
  script?: string;
}

export const RUNTIME_NAMES = ['python', 'quickjs'] as const;
export type BuildableRuntime = (typeof RUNTIME_NAMES)[number];

/** What a build script makes: runtime `name` at major.minor `version` (the catalog entry it adds). */
export interface RuntimeBuildSpec {
  script: BuildableRuntime;
  name: string;
  version: string;
  /** For people: "CPython 3.11 for WASI". */
  title: string;
}

export const RUNTIME_BUILDS: readonly RuntimeBuildSpec[] = [
  { script: 'python', name: 'python', version: '3.11', title: 'CPython 3.11 for WASI' },
  { script: 'quickjs', name: 'quickjs', version: '2025.04', title: 'QuickJS 2025-04-26 for WASI (Node.js Boxes)' },
];

/** scripts/runtimes/<name>/build.sh, found from this file upwards (works from src/ under tsx and from dist/). */
export async function buildScriptPath(name: BuildableRuntime): Promise<string> {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'scripts', 'runtimes', name, 'build.sh');
    try {
      await access(candidate);
      return candidate;
    } catch {
      const up = dirname(dir);
      if (up === dir) throw new Error(`scripts/runtimes/${name}/build.sh not found above ${dirname(fileURLToPath(import.meta.url))}`);
      dir = up;
    }
  }
}

/**
 * Builds (or finds in the cache) a runtime by running its build script. The script keys its output by its own
 * contents and its inputs' versions and serializes concurrent builds, so calling this from every test file
 * costs one build per cache.
 */
export async function buildRuntime(name: BuildableRuntime, opts: BuildOptions = {}): Promise<BuiltRuntime> {
  const script = opts.script ?? (await buildScriptPath(name));
  const args = [script, '--cache-dir', opts.cacheDir ?? defaultRuntimeCacheDir()];
  if (opts.force) args.push('--force');
  const { stdout, stderr, code } = await new Promise<{ stdout: string; stderr: string; code: number | null }>((resolve, reject) => {
    const child = spawn('bash', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let pending = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      // Keep only the tail for the error message: a full build logs megabytes.
      err = (err + c).slice(-20_000);
      if (!opts.onLog) return;
      pending += c;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) opts.onLog(line);
    });
    child.on('error', reject);
    child.on('close', (status) => resolve({ stdout: out, stderr: err, code: status }));
  });
  if (code !== 0) {
    const last = stderr.trimEnd().split('\n').slice(-30).join('\n');
    throw new Error(`${script} exited with ${code}${last ? `; its last lines:\n${last}` : ' and printed nothing'}`);
  }
  const dir = stdout.trim().split('\n').pop() ?? '';
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as RuntimeBuildManifest;
  return { dir, manifest };
}

/**
 * Builds a runtime (cached by its inputs) and makes sure the catalog holds that exact build; returns the
 * catalog. The proxy's provisioner, tests, the benchmark and `boxproxy runtimes build` share it, so a runtime is
 * built once per cache.
 */
export async function ensureBuiltRuntime(name: BuildableRuntime, opts: BuildOptions & { catalogDir?: string } = {}): Promise<OciRuntimeCatalog> {
  const built = await buildRuntime(name, opts);
  const catalog = new OciRuntimeCatalog(opts.catalogDir ? { dir: opts.catalogDir } : {});
  const present = (await catalog.store.list()).some(
    (e) => e.name === name && e.descriptor.annotations?.[ANNOTATION_RUNTIME_BUILD_KEY] === built.manifest.cacheKey,
  );
  if (!present || opts.force) await packageBuild(catalog.store, built.dir, built.manifest);
  return catalog;
}
