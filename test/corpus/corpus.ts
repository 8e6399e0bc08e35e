// The real-image corpus: what tests and the test setup call. `corpusImage(name)` gives the built image (from
// the cache, or built right then under the corpus lock); `ensureCorpus()` builds every recipe (test/setup).
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { hasTool } from '../helpers/proc.js';
import { buildImage, pruneCorpus, type BuildContext, type BuiltImage } from './build.js';
import type { Recipe } from './recipe.js';
import { RECIPES } from './recipes/index.js';

export type { BuiltImage as CorpusImage } from './build.js';

/** $BOXPROXY_CORPUS_CACHE, else ~/.cache/boxproxy/corpus. */
export function corpusRoot(): string {
  return process.env.BOXPROXY_CORPUS_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'boxproxy', 'corpus');
}

/** Host tools the builder and the native runs use, by Debian package. */
export const CORPUS_TOOLS: Readonly<Record<string, string>> = {
  debootstrap: 'debootstrap',
  getfattr: 'attr',
  unshare: 'util-linux',
  tar: 'tar',
  'apt-get': 'apt',
  flock: 'util-linux',
  npm: 'npm (the host Node.js)',
};

/** Why this machine cannot build or run corpus images, or undefined. */
export function corpusProblem(): string | undefined {
  if (process.getuid?.() !== 0) return 'the corpus needs root (debootstrap, chroot, overlayfs mounts)';
  const missing = Object.keys(CORPUS_TOOLS).filter((t) => !hasTool(t));
  if (missing.length) return `missing ${missing.join(', ')} (Debian packages ${[...new Set(missing.map((t) => CORPUS_TOOLS[t]))].join(' ')}; test/setup/deps.sh installs them)`;
  return undefined;
}

/** The `skip` value for a suite of corpus tests: under CI a machine that cannot run them fails instead. */
export function corpusSkip(): string | false {
  const problem = corpusProblem();
  if (!problem) return false;
  if (process.env.CI) throw new Error(`corpus tests cannot run: ${problem}`);
  return problem;
}

export function recipe(name: string): Recipe {
  const r = RECIPES.find((x) => x.name === name);
  if (!r) throw new Error(`no corpus recipe ${name} (test/corpus/recipes/)`);
  return r;
}

/**
 * Holds the corpus lock (flock on <root>/.lock, so builders in other worktrees wait) while `fn` runs. The lock
 * is held by a child process whose stdin is this process: it goes when `fn` ends or this process dies.
 */
async function withCorpusLock<T>(root: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(root, { recursive: true });
  const holder = spawn('flock', ['--exclusive', join(root, '.lock'), 'sh', '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    holder.once('error', reject);
    holder.once('exit', (code) => reject(new Error(`flock exited ${code}`)));
    holder.stdout.once('data', () => resolve());
  });
  holder.removeAllListeners('exit');
  try {
    return await fn();
  } finally {
    holder.stdin.end();
  }
}

function context(root: string, say: (line: string) => void): BuildContext {
  return { root, log: join(root, 'build.log'), say, index: new Map() };
}

const built = new Map<string, Promise<BuiltImage>>();

/** The corpus image built from the named recipe (instant from the cache; built now when missing or stale). */
export function corpusImage(name: string): Promise<BuiltImage> {
  let p = built.get(name);
  if (!p) {
    const problem = corpusProblem();
    if (problem) return Promise.reject(new Error(`corpus image ${name}: ${problem}`));
    const root = corpusRoot();
    p = withCorpusLock(root, () => buildImage(context(root, (l) => process.stderr.write(`corpus: ${l}\n`)), recipe(name)));
    built.set(name, p);
    p.catch(() => built.delete(name));
  }
  return p;
}

/** Builds every recipe (the test setup's step); resolves to the images in recipe order. */
export async function ensureCorpus(say: (line: string) => void, recipes: readonly Recipe[] = RECIPES): Promise<BuiltImage[]> {
  const root = corpusRoot();
  return withCorpusLock(root, async () => {
    const ctx = context(root, say);
    const out: BuiltImage[] = [];
    for (const r of recipes) out.push(await buildImage(ctx, r));
    // Leftovers of interrupted builds, and entries no worktree on this machine used for two weeks.
    await pruneCorpus(root, 14, say);
    return out;
  });
}
