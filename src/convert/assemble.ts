import { createHash, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, open, readFile, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { hexOf, sha256 } from '../oci/digest.js';
import { OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST } from '../oci/mediatypes.js';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest, ManifestBlob } from '../oci/types.js';
import { dropReasonForPath } from './policy.js';
import type { StrategyPlan } from './strategies/types.js';
import { TAR_END, tarHeader, tarPadding, type TarEntrySpec } from './tar-writer.js';
import { CONVERTER_VERSION } from './version.js';
import { clampPath, splitPath, type ContentRef, type VirtualFs } from './vfs.js';

export interface BoxArtifact {
  manifest: ManifestBlob;
  config: { digest: string; bytes: Buffer };
  layers: Array<{ descriptor: Descriptor; path: string /* file holding the blob */ }>;
}

export const MODULE_LAYER_TITLE = 'box-module.tar.gz';
export const ROOTFS_LAYER_TITLE = 'box-rootfs.tar.gz';
/**
 * Fixed so the same input gives the same bytes. Node's gzip header carries no name and mtime 0, and its
 * XFL/OS bytes depend only on the level and the platform zlib was built for; level 6 is zlib's default trade-off.
 */
export const GZIP_LEVEL = 6;
const COALESCE_BYTES = 256 * 1024;

export interface AssembleInput {
  plan: StrategyPlan;
  fs: VirtualFs;
  /** The source image config (labels, user, ports, created). */
  sourceConfig: ImageConfig;
  /** The source image manifest: the Box's subject. */
  sourceManifest: ManifestBlob;
  /** e.g. "127.0.0.1:5001/app:1.0" */
  sourceName: string;
  workDir: string;
}

export interface DroppedSummary {
  reason: string;
  files: number;
  bytes: number;
}

export interface AssembleResult {
  box: BoxArtifact;
  /** Files of the final image filesystem that the Box leaves out, by reason. */
  dropped: DroppedSummary[];
  /** File bytes in the rootfs layer, and uncompressed tar sizes. */
  rootfsFileBytes: number;
  moduleTarBytes: number;
  rootfsTarBytes: number;
  /** Symlinks whose absolute or escaping targets were rewritten to stay inside the root. */
  symlinksRewritten: number;
}

/** The entries' mtime: the source's `created`, else the epoch, in whole seconds. */
export function boxMtime(created: string | undefined): Date {
  const t = created ? Date.parse(created) : NaN;
  return new Date(Number.isFinite(t) && t > 0 ? Math.floor(t / 1000) * 1000 : 0);
}

/**
 * A symlink target that resolves inside the root without the kernel's help: absolute targets and ".." that
 * climb past "/" are rewritten relative to the link's directory (chroot semantics), others are kept verbatim.
 */
export function boxSymlinkTarget(linkPath: string, target: string): string {
  const linkDir = (splitPath(linkPath) ?? []).slice(0, -1);
  if (!target.startsWith('/')) {
    // Lexically escaping relative targets are clamped; the rest keep their exact spelling.
    let depth = linkDir.length;
    let escapes = false;
    for (const part of target.split('/')) {
      if (part === '..') depth--;
      else if (part !== '' && part !== '.') depth++;
      if (depth < 0) escapes = true;
    }
    if (!escapes) return target;
  }
  const resolved = clampPath(target, linkDir);
  let common = 0;
  while (common < linkDir.length && common < resolved.length && linkDir[common] === resolved[common]) common++;
  const up = linkDir.length - common;
  const rel = [...Array<string>(up).fill('..'), ...resolved.slice(common)].join('/');
  return rel === '' ? '.' : rel;
}

/** Reads pack ranges through one open handle per pack file. */
class ContentReader {
  // Promises, so two layers written at once share one handle per file.
  private handles = new Map<string, Promise<FileHandle>>();
  async *read(ref: ContentRef): AsyncGenerator<Buffer> {
    let opening = this.handles.get(ref.file);
    if (!opening) {
      opening = open(ref.file, 'r');
      this.handles.set(ref.file, opening);
    }
    const fh = await opening;
    let pos = ref.offset;
    let left = ref.size;
    while (left > 0) {
      const buf = Buffer.allocUnsafe(Math.min(left, 1024 * 1024));
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) throw new Error(`scratch file ${ref.file} is shorter than expected`);
      pos += bytesRead;
      left -= bytesRead;
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
    }
  }
  async close(): Promise<void> {
    await Promise.allSettled([...this.handles.values()].map(async (h) => (await h).close()));
    this.handles.clear();
  }
}

class Hasher extends Transform {
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
  digest(): string {
    return 'sha256:' + this.hash.digest('hex');
  }
}

type TarItem = { spec: TarEntrySpec; content?: () => AsyncIterable<Buffer> };

/** Writes a tar+gzip layer; returns its descriptor facts and the uncompressed digest (diff_id). */
async function writeLayer(items: AsyncIterable<TarItem>, file: string): Promise<{ digest: string; size: number; diffId: string; tarBytes: number }> {
  // Headers and padding are tiny; each chunk handed to zlib costs a thread-pool round trip, so small pieces
  // are gathered into blocks of about COALESCE_BYTES.
  async function* tar(): AsyncGenerator<Buffer> {
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const take = (): Buffer => {
      const out = Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      return out;
    };
    const add = (b: Buffer): boolean => {
      pending.push(b);
      pendingBytes += b.length;
      return pendingBytes >= COALESCE_BYTES;
    };
    for await (const item of items) {
      if (add(tarHeader(item.spec))) yield take();
      if (item.spec.type === 'File' && item.content) {
        let written = 0;
        for await (const chunk of item.content()) {
          written += chunk.length;
          if (add(chunk)) yield take();
        }
        if (written !== (item.spec.size ?? 0)) throw new Error(`${item.spec.path}: wrote ${written} bytes, header says ${item.spec.size}`);
        const pad = tarPadding(written);
        if (pad.length && add(pad)) yield take();
      }
    }
    add(TAR_END);
    yield take();
  }
  const raw = new Hasher();
  const packed = new Hasher();
  await pipeline(Readable.from(tar(), { objectMode: false }), raw, createGzip({ level: GZIP_LEVEL }), packed, createWriteStream(file));
  return { digest: packed.digest(), size: packed.bytes, diffId: raw.digest(), tarBytes: raw.bytes };
}

function tarPath(absPath: string, dir: boolean): string {
  const rel = absPath.replace(/^\/+/, '');
  return dir ? rel + '/' : rel;
}

/** Builds the Box: module layer, rootfs layer, config and manifest, all deterministic. */
export async function assembleBox(input: AssembleInput): Promise<AssembleResult> {
  const { plan, fs, sourceConfig, sourceManifest, workDir } = input;
  const mtime = boxMtime(sourceConfig.created);
  const outDir = join(workDir, 'box');
  await mkdir(outDir, { recursive: true });
  const reader = new ContentReader();
  const exclude = new Set(plan.excludePaths);
  const droppedBy = new Map<string, DroppedSummary>();
  const drop = (reason: string, bytes: number): void => {
    const d = droppedBy.get(reason) ?? { reason, files: 0, bytes: 0 };
    d.files++;
    d.bytes += bytes;
    droppedBy.set(reason, d);
  };
  let rootfsFileBytes = 0;
  let symlinksRewritten = 0;

  // Layer 1: the module(s), with their parent directories as the image has them.
  const moduleItems = async function* (): AsyncGenerator<TarItem> {
    const dirs = new Map<string, number>();
    for (const m of plan.modules) {
      const parts = splitPath(m.boxPath) ?? [];
      for (let i = 1; i < parts.length; i++) {
        const dirPath = '/' + parts.slice(0, i).join('/');
        const node = fs.get(parts.slice(0, i));
        dirs.set(dirPath, node?.type === 'dir' ? node.mode : 0o755);
      }
    }
    const entries: Array<{ path: string; item: TarItem }> = [];
    for (const [path, mode] of dirs) entries.push({ path, item: { spec: { path: tarPath(path, true), type: 'Directory', mode, mtime } } });
    for (const m of plan.modules) {
      const from = m.from;
      let size: number;
      let content: () => AsyncIterable<Buffer>;
      if (from.kind === 'image') {
        const ref = from.inode.content;
        if (!ref) throw new Error(`module ${from.imagePath} has no kept content`);
        size = ref.size;
        content = () => reader.read(ref);
      } else {
        const bytes = await readFile(from.path);
        size = bytes.length;
        content = async function* () {
          yield bytes;
        };
      }
      entries.push({ path: m.boxPath, item: { spec: { path: tarPath(m.boxPath, false), type: 'File', mode: m.mode & 0o1777, size, mtime }, content } });
    }
    entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    for (const e of entries) yield e.item;
  };

  // Layer 2: the image's files minus what cannot matter in Wasm.
  const rootfsItems = async function* (): AsyncGenerator<TarItem> {
    const firstPathOfInode = new Map<number, string>();
    for (const { path, node } of fs.walk()) {
      if (node.type === 'dir') {
        yield { spec: { path: tarPath(path, true), type: 'Directory', mode: node.mode, mtime } };
        continue;
      }
      if (exclude.has(path)) continue;
      if (node.type === 'symlink') {
        const reason = dropReasonForPath(path.slice(1));
        if (reason) {
          drop(reason, 0);
          continue;
        }
        const target = boxSymlinkTarget(path, node.target);
        if (target !== node.target) symlinksRewritten++;
        yield { spec: { path: tarPath(path, false), type: 'SymbolicLink', mode: 0o777, linkpath: target, mtime } };
        continue;
      }
      const inode = node.inode;
      if (inode.dropped || !inode.content) {
        // Hard links count as files, their shared bytes once.
        const firstSight = !firstPathOfInode.has(inode.id);
        firstPathOfInode.set(inode.id, path);
        drop(inode.dropped ?? 'content not kept', firstSight ? inode.size : 0);
        continue;
      }
      const first = firstPathOfInode.get(inode.id);
      if (first !== undefined) {
        yield { spec: { path: tarPath(path, false), type: 'Link', mode: inode.mode, linkpath: tarPath(first, false), mtime } };
        continue;
      }
      firstPathOfInode.set(inode.id, path);
      rootfsFileBytes += inode.size;
      const ref = inode.content;
      yield { spec: { path: tarPath(path, false), type: 'File', mode: inode.mode, size: ref.size, mtime }, content: () => reader.read(ref) };
    }
  };

  let moduleLayer: Awaited<ReturnType<typeof writeLayer>>;
  let rootfsLayer: Awaited<ReturnType<typeof writeLayer>>;
  const modulePath = join(outDir, 'module.tar.gz');
  const rootfsPath = join(outDir, 'rootfs.tar.gz');
  try {
    // Both layers compress at once: zlib runs on the thread pool.
    [moduleLayer, rootfsLayer] = await Promise.all([writeLayer(moduleItems(), modulePath), writeLayer(rootfsItems(), rootfsPath)]);
  } finally {
    await reader.close();
  }

  const labels: Record<string, string> = {
    ...(sourceConfig.config?.Labels ?? {}),
    'dev.boxproxy.strategy': plan.strategy,
    'dev.boxproxy.source.digest': sourceManifest.digest,
    'dev.boxproxy.converter.version': CONVERTER_VERSION,
    'dev.boxproxy.runner': plan.runner,
    ...plan.labels,
  };
  const src = sourceConfig.config ?? {};
  const boxConfig: ImageConfig = {
    ...(sourceConfig.created ? { created: sourceConfig.created } : {}),
    architecture: 'wasm',
    os: 'wasip1',
    config: {
      ...(src.User ? { User: src.User } : {}),
      ...(src.ExposedPorts && Object.keys(src.ExposedPorts).length > 0 ? { ExposedPorts: src.ExposedPorts } : {}),
      Env: plan.env,
      Entrypoint: plan.entrypoint,
      Cmd: plan.cmd,
      WorkingDir: plan.workingDir,
      Labels: sortKeys(labels),
    },
    rootfs: { type: 'layers', diff_ids: [moduleLayer.diffId, rootfsLayer.diffId] },
  };
  const configBytes = Buffer.from(JSON.stringify(boxConfig));
  const configDigest = sha256(configBytes);
  const layerDescriptors: Descriptor[] = [
    { mediaType: OCI_LAYER_GZIP, digest: moduleLayer.digest, size: moduleLayer.size, annotations: { 'org.opencontainers.image.title': MODULE_LAYER_TITLE } },
    { mediaType: OCI_LAYER_GZIP, digest: rootfsLayer.digest, size: rootfsLayer.size, annotations: { 'org.opencontainers.image.title': ROOTFS_LAYER_TITLE } },
  ];
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: configDigest, size: configBytes.length },
    layers: layerDescriptors,
    subject: { mediaType: sourceManifest.mediaType, digest: sourceManifest.digest, size: sourceManifest.bytes.length },
    annotations: {
      'org.opencontainers.image.base.name': input.sourceName,
      'org.opencontainers.image.base.digest': sourceManifest.digest,
      'dev.boxproxy.strategy': plan.strategy,
    },
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const box: BoxArtifact = {
    manifest: { digest: sha256(manifestBytes), mediaType: OCI_MANIFEST, bytes: manifestBytes },
    config: { digest: configDigest, bytes: configBytes },
    layers: [
      { descriptor: layerDescriptors[0] as Descriptor, path: modulePath },
      { descriptor: layerDescriptors[1] as Descriptor, path: rootfsPath },
    ],
  };
  return {
    box,
    dropped: [...droppedBy.values()].sort((a, b) => b.bytes - a.bytes || a.reason.localeCompare(b.reason)),
    rootfsFileBytes,
    moduleTarBytes: moduleLayer.tarBytes,
    rootfsTarBytes: rootfsLayer.tarBytes,
    symlinksRewritten,
  };
}

function sortKeys(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Writes the Box as an OCI image layout (oci-layout, index.json, blobs/sha256). An existing layout keeps its
 * other images; an entry with the same tag is replaced.
 */
export async function writeBoxToOciLayout(box: BoxArtifact, dir: string, tag?: string): Promise<void> {
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  for (const layer of box.layers) await copyFile(layer.path, join(blobs, hexOf(layer.descriptor.digest)));
  await writeFile(join(blobs, hexOf(box.config.digest)), box.config.bytes);
  await writeFile(join(blobs, hexOf(box.manifest.digest)), box.manifest.bytes);
  let index: ImageIndex = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] };
  try {
    const existing = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as ImageIndex;
    if (Array.isArray(existing.manifests)) index = { ...existing, manifests: existing.manifests };
  } catch {
    // No layout yet.
  }
  const entry: Descriptor = {
    mediaType: OCI_MANIFEST,
    digest: box.manifest.digest,
    size: box.manifest.bytes.length,
    platform: { os: 'wasip1', architecture: 'wasm' },
  };
  if (tag) entry.annotations = { 'org.opencontainers.image.ref.name': tag };
  index.manifests = index.manifests.filter((d) =>
    tag ? d.annotations?.['org.opencontainers.image.ref.name'] !== tag : d.digest !== box.manifest.digest,
  );
  index.manifests.push(entry);
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
}
