// A corpus image is described by data, like a small Dockerfile: FROM a debootstrap minbase of `suite`,
// RUN apt-get install `packages` (purging `purge` in the same RUN), COPY `files` (and `npm` packages), RUN `run`,
// then the config. The builder (build.ts) turns it into an OCI layout with one layer per step.
import { createHash } from 'node:crypto';

export type Suite = 'bookworm' | 'trixie';

export const SUITES: readonly Suite[] = ['bookworm', 'trixie'];

export interface CorpusFile {
  content: string;
  /** Default 0644 (0755 when the content starts with "#!"). */
  mode?: number;
}

export interface ImageSettings {
  /** Merged over Docker's default PATH, like `ENV` lines (write `$PATH` out: there is no expansion). */
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  WorkingDir?: string;
  User?: string;
}

export interface Recipe {
  /** The image's name and its tag in the corpus ("python-debian"). */
  name: string;
  /** One line: what real image this stands for. */
  description: string;
  suite: Suite;
  /** `RUN apt-get update && apt-get install -y --no-install-recommends <packages> && rm -rf /var/lib/apt/lists/*`. */
  packages: readonly string[];
  /** `apt-get purge -y --auto-remove` in that same RUN: what the install layer removes from the base (whiteouts). */
  purge?: readonly string[];
  /** The COPY layer: absolute path -> content. Directories are created 0755. */
  files?: Readonly<Record<string, string | CorpusFile>>;
  /** npm packages at exact versions ("left-pad@1.3.0"), installed into `dir` of the COPY layer by the host's npm, scripts off. */
  npm?: { dir: string; packages: readonly string[] };
  /** A RUN after the COPY, its own layer: each command runs as `/bin/sh -c` in the image, as root, network on. */
  run?: readonly string[];
  config: ImageSettings;
}

/** Docker's PATH for images that set none (what `docker run` gives a debian image). */
export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const EXACT_NPM = /^(@[a-z0-9._~-]+\/)?[a-z0-9._~-]+@\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/;

/** Why a recipe cannot be built as written, or undefined. */
export function recipeProblem(r: Recipe): string | undefined {
  if (!/^[a-z0-9][a-z0-9.-]*$/.test(r.name)) return `recipe name ${JSON.stringify(r.name)} must be lower-case letters, digits, dots and dashes`;
  if (!SUITES.includes(r.suite)) return `${r.name}: unknown suite ${r.suite}`;
  for (const p of [...r.packages, ...(r.purge ?? [])]) if (!/^[a-z0-9][a-z0-9+.-]*$/.test(p)) return `${r.name}: bad package name ${JSON.stringify(p)}`;
  for (const path of Object.keys(r.files ?? {})) if (!path.startsWith('/') || path.split('/').includes('..')) return `${r.name}: file path ${path} must be absolute`;
  for (const spec of r.npm?.packages ?? []) if (!EXACT_NPM.test(spec)) return `${r.name}: npm package ${spec} needs an exact version (name@x.y.z): the cache is keyed by it`;
  if (r.npm && !r.npm.dir.startsWith('/')) return `${r.name}: npm.dir must be absolute`;
  return undefined;
}

/** JSON with sorted keys: the same data always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function hashOf(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 16);
}

/** The image config's Env: Docker's default PATH, then the recipe's entries (a later NAME= replaces an earlier one). */
export function imageEnv(r: Recipe): string[] {
  const out = [DEFAULT_PATH];
  for (const entry of r.config.Env ?? []) {
    const name = entry.slice(0, entry.indexOf('=') + 1);
    const at = out.findIndex((e) => e.startsWith(name));
    if (at === -1) out.push(entry);
    else out[at] = entry;
  }
  return out;
}
