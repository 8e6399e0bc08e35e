// Debian's binary package index, through a private apt configuration (the machine's /etc/apt is neither read
// nor changed): what decides whether a cached corpus layer is still what `apt-get install` would give today.
import { spawn } from 'node:child_process';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execText } from './exec.js';
import type { Suite } from './recipe.js';

export const DEBIAN_MIRROR = 'http://deb.debian.org/debian';

/** Package name -> version. */
export type Versions = Map<string, string>;

/** The index is fetched again when older than this (the same rule as the runtime builds' source index). */
const INDEX_MAX_AGE_MS = 24 * 3600 * 1000;

function aptOptions(dir: string): string[] {
  const o = (k: string, v: string): string[] => ['-o', `${k}=${v}`];
  return [
    ...o('Dir::Etc::sourcelist', join(dir, 'sources.list')),
    ...o('Dir::Etc::sourceparts', join(dir, 'sources.list.d')),
    ...o('Dir::State::Lists', join(dir, 'lists')),
    ...o('Dir::Cache', join(dir, 'cache')),
    ...o('Dir::State::status', '/dev/null'),
    ...o('Acquire::Languages', 'none'),
    ...o('APT::Sandbox::User', 'root'),
    // Only the Packages index is read; AppStream metadata and Contents are not needed.
    ...o('Acquire::IndexTargets::deb::DEP-11::DefaultEnabled', 'false'),
    ...o('Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled', 'false'),
    ...o('Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled', 'false'),
    ...o('Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled', 'false'),
  ];
}

function runApt(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('apt-get', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stderr }));
  });
}

async function packagesFiles(listsDir: string, suite: Suite): Promise<string[]> {
  let names: string[] = [];
  try {
    names = await readdir(listsDir);
  } catch {
    return [];
  }
  // apt keeps lists compressed (lz4 on bookworm); apt-helper cat-file reads whatever it wrote.
  return names.filter((n) => n.includes(`_dists_${suite}_main_binary-`) && /_Packages(\.\w+)?$/.test(n)).map((n) => join(listsDir, n));
}

/** Parses Packages or dpkg status stanzas into name -> version (status: installed packages only). */
export function parseStanzas(text: string, installedOnly = false): Versions {
  const out: Versions = new Map();
  for (const stanza of text.split(/\n\s*\n/)) {
    let name: string | undefined;
    let version: string | undefined;
    let status: string | undefined;
    for (const line of stanza.split('\n')) {
      if (line.startsWith('Package: ')) name = line.slice(9).trim();
      else if (line.startsWith('Version: ')) version = line.slice(9).trim();
      else if (line.startsWith('Status: ')) status = line.slice(8).trim();
    }
    if (!name || !version) continue;
    if (installedOnly && status !== 'install ok installed') continue;
    out.set(name, version);
  }
  return out;
}

export interface IndexResult {
  versions: Versions;
  /** Why the index may be old (the fetch failed and an older copy was used), or undefined. */
  warning?: string;
}

/**
 * The suite's main binary index (amd64 and all), fetched into `stateDir` when missing or a day old. Undefined
 * versions when it cannot be fetched and no copy exists.
 */
export async function suiteIndex(stateDir: string, suite: Suite): Promise<IndexResult | undefined> {
  const dir = join(stateDir, suite);
  await mkdir(join(dir, 'lists', 'partial'), { recursive: true });
  await mkdir(join(dir, 'sources.list.d'), { recursive: true });
  await mkdir(join(dir, 'cache', 'archives', 'partial'), { recursive: true });
  await writeFile(join(dir, 'sources.list'), '');
  await writeFile(
    join(dir, 'sources.list.d', 'debian.sources'),
    `Types: deb\nURIs: ${DEBIAN_MIRROR}\nSuites: ${suite}\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`,
  );
  let files = await packagesFiles(join(dir, 'lists'), suite);
  let age = Infinity;
  for (const f of files) age = Math.min(age, Date.now() - (await stat(f)).mtimeMs);
  let warning: string | undefined;
  if (files.length === 0 || age > INDEX_MAX_AGE_MS) {
    const r = await runApt([...aptOptions(dir), 'update', '-qq']);
    files = await packagesFiles(join(dir, 'lists'), suite);
    if (r.code !== 0 || files.length === 0) {
      if (files.length === 0) return undefined;
      warning = `apt-get update for ${suite} failed (${r.stderr.trim().split('\n').pop() ?? ''}); using the index from ${new Date(Date.now() - age).toISOString()}`;
    }
  }
  const versions: Versions = new Map();
  for (const f of files) for (const [k, v] of parseStanzas(await execText('/usr/lib/apt/apt-helper', ['cat-file', f]))) versions.set(k, v);
  return warning ? { versions, warning } : { versions };
}

/** What changed between the versions a layer was built with and the index: empty when it is current. */
export function staleVersions(recorded: Readonly<Record<string, string>>, index: Versions): string[] {
  const out: string[] = [];
  for (const [name, version] of Object.entries(recorded)) {
    const now = index.get(name);
    if (now !== version) out.push(`${name} ${version} -> ${now ?? '(gone)'}`);
  }
  return out;
}
