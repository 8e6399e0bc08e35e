// Reads a Box (from an OCI image layout or any ImageSource) and unpacks its layers into a cached rootfs.
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Unpack, type ReadEntry } from 'tar';
import { OciLayoutSource } from '../image/oci-layout.js';
import { MAX_DOCUMENT_BYTES, readSmall, type ImageSource } from '../image/source.js';
import { hexOf } from '../oci/digest.js';
import { containedSymlinkTarget } from '../oci/rootfs.js';
import { DOCKER_LAYER_GZIP, IMAGE_MANIFEST_TYPES, isIndexType, OCI_LAYER_GZIP, OCI_LAYER_TAR } from '../oci/mediatypes.js';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest, Platform } from '../oci/types.js';
import {
  BOX_ARCHITECTURE,
  BOX_OS,
  BOX_RUNNERS,
  LABEL_RUNNER,
  LEGACY_BOX_ARCHITECTURES,
  LEGACY_BOX_OS,
  RUNNER_WASI,
  type BoxRunnerName,
} from './format.js';

/** Something about a Box (or what was taken for one) that makes it unusable; the message says what. */
export class BoxError extends Error {
  override name = 'BoxError';
}

export interface BoxImage {
  /** Where it was read from, e.g. "oci-layout:/tmp/box". */
  sourceName: string;
  manifestDigest: string;
  manifest: ImageManifest;
  configDigest: string;
  config: ImageConfig;
  runner: BoxRunnerName;
}

const LAYER_TYPES: ReadonlySet<string> = new Set([OCI_LAYER_GZIP, OCI_LAYER_TAR, DOCKER_LAYER_GZIP, 'application/vnd.docker.image.rootfs.diff.tar']);

function isBoxPlatform(p: Platform | { os?: string; architecture?: string } | undefined): boolean {
  if (!p) return false;
  if (p.os === BOX_OS && p.architecture === BOX_ARCHITECTURE) return true;
  return p.os === LEGACY_BOX_OS && LEGACY_BOX_ARCHITECTURES.includes(p.architecture ?? '');
}

function platformText(p: { os?: string; architecture?: string; variant?: string } | undefined): string {
  if (!p) return 'unknown platform';
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch (err) {
    throw new BoxError(`${what} is not JSON`, { cause: err });
  }
}

/**
 * Resolves `reference` (tag, digest, or "" for a layout's only image) to a Box: an index is narrowed to its
 * wasip1/wasm entry; the manifest and config are digest-checked by the source.
 */
export async function resolveBox(source: ImageSource, reference: string): Promise<BoxImage> {
  let blob = await source.getManifest(reference);
  if (isIndexType(blob.mediaType)) {
    const index = parseJson<ImageIndex>(blob.bytes, `index ${blob.digest}`);
    const entries = Array.isArray(index.manifests) ? index.manifests : [];
    // The current convention first, Docker's early wasi/wasm after it.
    const entry = entries.find((d) => d.platform?.os === BOX_OS && isBoxPlatform(d.platform)) ?? entries.find((d) => isBoxPlatform(d.platform));
    if (!entry) {
      const have = entries.map((d) => platformText(d.platform)).join(', ') || 'no entries';
      const where = reference ? `${source.name} ${reference}` : source.name;
      throw new BoxError(`${where}: the index has no ${BOX_OS}/${BOX_ARCHITECTURE} Box (it has ${have}); convert the image first (boxproxy convert)`);
    }
    blob = await source.getManifest(entry.digest);
  }
  if (!IMAGE_MANIFEST_TYPES.has(blob.mediaType)) throw new BoxError(`${blob.digest} is a ${blob.mediaType}, not an image manifest`);
  const manifest = parseJson<ImageManifest>(blob.bytes, `manifest ${blob.digest}`);
  if (!manifest.config || !Array.isArray(manifest.layers)) throw new BoxError(`manifest ${blob.digest} has no config or layers`);
  const config = parseJson<ImageConfig>(await readSmall(await source.openBlob(manifest.config.digest), MAX_DOCUMENT_BYTES, `config ${manifest.config.digest}`), `config ${manifest.config.digest}`);
  if (!isBoxPlatform(config)) {
    throw new BoxError(`${blob.digest} is a ${platformText(config)} image, not a Box (${BOX_OS}/${BOX_ARCHITECTURE}); convert it first (boxproxy convert)`);
  }
  const entrypoint = config.config?.Entrypoint ?? [];
  if (entrypoint.length === 0 || !entrypoint[0]) throw new BoxError(`Box ${blob.digest} has no Entrypoint (the module path)`);
  for (const layer of manifest.layers) {
    if (!LAYER_TYPES.has(layer.mediaType)) throw new BoxError(`Box ${blob.digest} has a layer of type ${layer.mediaType}; only tar and tar+gzip layers are read`);
  }
  const label = config.config?.Labels?.[LABEL_RUNNER] ?? RUNNER_WASI;
  if (!(BOX_RUNNERS as readonly string[]).includes(label)) throw new BoxError(`Box ${blob.digest} needs runner ${JSON.stringify(label)}; this boxproxy knows ${BOX_RUNNERS.join(', ')}`);
  return { sourceName: source.name, manifestDigest: blob.digest, manifest, configDigest: manifest.config.digest, config, runner: label as BoxRunnerName };
}

/** Reads a Box from an OCI image layout directory. */
export async function readBoxLayout(dir: string, reference = ''): Promise<{ source: ImageSource; box: BoxImage }> {
  const source = new OciLayoutSource(dir);
  return { source, box: await resolveBox(source, reference) };
}

export interface UnpackLimits {
  /** Sum of entry sizes over all layers. */
  maxBytes: number;
  maxEntries: number;
}

export const DEFAULT_UNPACK_LIMITS: UnpackLimits = { maxBytes: 8 * 1024 ** 3, maxEntries: 1_000_000 };

export interface UnpackOptions {
  /** Default: defaultBoxCacheDir(). */
  cacheDir?: string;
  limits?: Partial<UnpackLimits>;
}

export interface UnpackedBox {
  box: BoxImage;
  /** Host directory holding the Box's filesystem. */
  rootfs: string;
  /** The rootfs was already in the cache. */
  reused: boolean;
  /** Entries left out while unpacking (devices, unsafe paths), and rewritten symlinks. */
  notes: string[];
}

/** $BOXPROXY_CACHE, else $XDG_CACHE_HOME/boxproxy/boxes, else ~/.cache/boxproxy/boxes. */
export function defaultBoxCacheDir(): string {
  if (process.env.BOXPROXY_CACHE) return process.env.BOXPROXY_CACHE;
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'boxproxy', 'boxes');
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Unpacks the Box's layers in order into `<cacheDir>/<manifest hex>/rootfs`, or reuses that directory. The
 * rootfs is built in a private temporary directory and renamed into place only when every layer was read and
 * verified, so a cache entry is always complete, and concurrent unpackers of one Box do not collide.
 */
export async function unpackBox(source: ImageSource, box: BoxImage, opts: UnpackOptions = {}): Promise<UnpackedBox> {
  const cacheDir = opts.cacheDir ?? defaultBoxCacheDir();
  const final = join(cacheDir, hexOf(box.manifestDigest));
  const rootfs = join(final, 'rootfs');
  if (await exists(rootfs)) return { box, rootfs, reused: true, notes: [] };
  await mkdir(cacheDir, { recursive: true });
  const tmp = join(cacheDir, `.tmp-${hexOf(box.manifestDigest).slice(0, 12)}-${randomBytes(6).toString('hex')}`);
  const tmpRoot = join(tmp, 'rootfs');
  await mkdir(tmpRoot, { recursive: true });
  const limits = { ...DEFAULT_UNPACK_LIMITS, ...opts.limits };
  const budget = { bytes: 0, entries: 0 };
  const notes: string[] = [];
  try {
    for (const [i, layer] of box.manifest.layers.entries()) {
      await unpackLayer(source, layer, i, tmpRoot, limits, budget, notes);
    }
    await writeFile(join(tmp, 'config.json'), JSON.stringify(box.config));
    try {
      await rename(tmp, final);
    } catch (err) {
      // Someone else finished the same Box first: theirs is as good as ours.
      const code = (err as NodeJS.ErrnoException).code;
      if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await exists(rootfs))) {
        await rm(tmp, { recursive: true, force: true });
        return { box, rootfs, reused: true, notes };
      }
      throw err;
    }
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  return { box, rootfs, reused: false, notes };
}

/** Reads a Box and unpacks it: everything `boxproxy run` needs before starting the module. */
export async function loadBox(source: ImageSource, reference: string, opts: UnpackOptions = {}): Promise<UnpackedBox> {
  return unpackBox(source, await resolveBox(source, reference), opts);
}

const EXTRACTED_TYPES: ReadonlySet<string> = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link']);
/** OCI whiteout markers: `.wh.<name>` deletes a lower layer's <name>, `.wh..wh..opq` empties the directory. */
const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

/** A tar path as clean relative parts, or undefined when it climbs with "..". */
function relativeParts(path: string): string[] | undefined {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  return parts.includes('..') ? undefined : parts;
}


/** Joins `parts` under `root` refusing to pass through a symlink (so deleting there cannot reach outside). */
async function pathWithoutSymlinks(root: string, parts: readonly string[]): Promise<string | undefined> {
  let current = root;
  for (const part of parts) {
    current = join(current, part);
    try {
      const st = await lstat(current);
      if (st.isSymbolicLink() && part !== parts[parts.length - 1]) return undefined;
    } catch {
      return undefined;
    }
  }
  return current;
}

async function unpackLayer(
  source: ImageSource,
  layer: Descriptor,
  index: number,
  root: string,
  limits: UnpackLimits,
  budget: { bytes: number; entries: number },
  notes: string[],
): Promise<void> {
  const whiteouts: string[][] = [];
  const opaque: string[][] = [];
  const written = new Set<string>();
  const symlinks: Array<{ parts: string[]; target: string }> = [];
  const linkPaths = new Set<string>();
  const refusals: string[] = [];
  let failure: Error | undefined;
  const note = (msg: string): void => {
    if (notes.length < 100) notes.push(`layer ${index}: ${msg}`);
  };

  const unpack = new Unpack({
    cwd: root,
    // Never the tar's owners (we may run as root), never setuid/setgid bits, never paths outside cwd.
    preserveOwner: false,
    preservePaths: false,
    processUmask: 0o022,
    maxDepth: 256,
    onwarn: (code: string, message: string) => {
      if (code !== 'TAR_ENTRY_INFO') refusals.push(`${code}: ${message}`);
    },
    filter: (path: string, entry: ReadEntry | unknown) => {
      const e = entry as ReadEntry;
      budget.entries++;
      budget.bytes += e.size ?? 0;
      if (!failure && (budget.entries > limits.maxEntries || budget.bytes > limits.maxBytes)) {
        failure = new BoxError(`Box layer ${layer.digest} exceeds the unpack limits (${limits.maxEntries} entries, ${limits.maxBytes} bytes)`);
        unpack.abort(failure);
        return false;
      }
      const parts = relativeParts(path);
      if (!parts || path.startsWith('/')) {
        note(`${JSON.stringify(path)} skipped: absolute or climbing path`);
        return false;
      }
      if (parts.length === 0) return e.type === 'Directory';
      if (!EXTRACTED_TYPES.has(e.type)) {
        note(`${path} skipped: ${e.type} entries are not unpacked`);
        return false;
      }
      const base = parts[parts.length - 1] as string;
      if (base === OPAQUE) {
        opaque.push(parts.slice(0, -1));
        return false;
      }
      if (base.startsWith(WHITEOUT)) {
        whiteouts.push([...parts.slice(0, -1), base.slice(WHITEOUT.length)]);
        return false;
      }
      if (e.type === 'Link') {
        const target = relativeParts(e.linkpath ?? '');
        if (!target || target.length === 0) {
          note(`${path} skipped: hard link to ${JSON.stringify(e.linkpath)}`);
          return false;
        }
      }
      for (let i = 1; i < parts.length; i++) {
        if (linkPaths.has(parts.slice(0, i).join('/'))) {
          // tar does not write through links that exist; the same holds for this layer's own pending links.
          note(`${path} skipped: it is under the symlink ${parts.slice(0, i).join('/')}`);
          return false;
        }
      }
      for (let i = 1; i <= parts.length; i++) written.add(parts.slice(0, i).join('/'));
      if (e.type === 'SymbolicLink') {
        linkPaths.add(parts.join('/'));
        // Created after the layer: tar (rightly) refuses a link whose target passes through another link, which
        // merged-/usr images are full of (lib -> usr/lib); ours are made to resolve inside the root instead.
        const target = containedSymlinkTarget(parts.join('/'), e.linkpath ?? '');
        if (target !== e.linkpath) note(`${path} -> ${e.linkpath} rewritten to ${target} (stays inside the Box)`);
        symlinks.push({ parts, target });
        return false;
      }
      if (e.mode !== undefined) e.mode &= ~0o6000;
      return true;
    },
  });
  await pipeline(await source.openBlob(layer.digest), unpack);
  if (failure) throw failure;
  for (const r of refusals.slice(0, 20)) note(r);

  // OCI whiteouts hide what lower layers put there; this layer's own entries stay.
  for (const dirParts of opaque) {
    const dir = await pathWithoutSymlinks(root, dirParts);
    if (!dir) continue;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const rel = [...dirParts, name].join('/');
      if (!written.has(rel)) await rm(join(dir, name), { recursive: true, force: true });
    }
  }
  for (const parts of whiteouts) {
    if (written.has(parts.join('/'))) continue;
    const target = await pathWithoutSymlinks(root, parts);
    if (target) await rm(target, { recursive: true, force: true });
  }
  for (const { parts, target } of symlinks) {
    const problem = await placeSymlink(root, parts, target);
    if (problem) note(`symlink ${parts.join('/')} skipped: ${problem}`);
  }
}

/** Creates root/parts -> target, replacing what a lower layer had there; never through another symlink. */
async function placeSymlink(root: string, parts: readonly string[], target: string): Promise<string | undefined> {
  let dir = root;
  for (const part of parts.slice(0, -1)) {
    dir = join(dir, part);
    let st;
    try {
      st = await lstat(dir);
    } catch {
      await mkdir(dir);
      continue;
    }
    if (st.isSymbolicLink()) return `its parent ${part} is a symlink`;
    if (!st.isDirectory()) return `its parent ${part} is not a directory`;
  }
  const path = join(dir, parts[parts.length - 1] as string);
  try {
    const st = await lstat(path);
    // A directory with entries is a conflict within the layer; otherwise the link replaces what was there.
    if (st.isDirectory() && (await readdir(path)).length > 0) return 'a non-empty directory is in its place';
    await rm(path, { recursive: true, force: true });
  } catch {
    // Nothing there.
  }
  await symlink(target, path);
  return undefined;
}
