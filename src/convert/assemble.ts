import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { ANNOTATION_STRATEGY, BOX_ARCHITECTURE, BOX_OS, LABEL_CONVERTER_VERSION, LABEL_GZIP, LABEL_RUNNER, LABEL_SOURCE_DIGEST, LABEL_STRATEGY } from '../box/format.js';
import { join } from 'node:path';
import { hexOf, sha256 } from '../oci/digest.js';
import { containedSymlinkTarget } from '../oci/rootfs.js';
import { OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST } from '../oci/mediatypes.js';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest, ManifestBlob } from '../oci/types.js';
import { dropReasonForPath } from './policy.js';
import type { StrategyPlan } from './strategies/types.js';
import type { GzipCodec } from './gzip/index.js';
import { GzipLayerWriter, type WrittenLayer } from './layer-writer.js';
import { TAR_END, tarHeader, type TarEntrySpec } from './tar-writer.js';
import { CONVERTER_VERSION } from './version.js';
import { PackReader, WINDOW_BYTES, type ContentRef } from './pack.js';
import { splitPath, type VirtualFs } from './vfs.js';

export interface BoxArtifact {
  manifest: ManifestBlob;
  config: { digest: string; bytes: Buffer };
  layers: Array<{ descriptor: Descriptor; path: string /* file holding the blob */ }>;
}

export const MODULE_LAYER_TITLE = 'box-module.tar.gz';
export const ROOTFS_LAYER_TITLE = 'box-rootfs.tar.gz';

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
  /** Writes the layers; its name goes into the Box's labels. */
  gzip: GzipCodec;
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


type TarContent = { kind: 'bytes'; bytes: Buffer } | { kind: 'ref'; ref: ContentRef };
type TarItem = { spec: TarEntrySpec; content?: TarContent };

/** Writes a tar+gzip layer in one pass; returns its descriptor facts and the uncompressed digest (diff_id). */
async function writeLayer(items: Iterable<TarItem>, file: string, gzip: GzipCodec): Promise<WrittenLayer> {
  const writer = await GzipLayerWriter.create(file, gzip);
  const packs = new PackReader();
  try {
    for (const item of items) {
      await writer.write(tarHeader(item.spec));
      const content = item.content;
      if (item.spec.type !== 'File' || !content) continue;
      let size: number;
      if (content.kind === 'bytes') {
        size = content.bytes.length;
        await writer.write(content.bytes);
      } else {
        const ref = content.ref;
        size = ref.size;
        if (size <= WINDOW_BYTES / 4) await writer.write(await packs.read(ref));
        else await writer.copyFrom(await packs.get(ref.file), ref.offset, size, item.spec.path);
      }
      if (size !== (item.spec.size ?? 0)) throw new Error(`${item.spec.path}: wrote ${size} bytes, header says ${item.spec.size}`);
      const rest = size % 512;
      if (rest !== 0) await writer.zeros(512 - rest);
    }
    await writer.zeros(TAR_END.length);
  } catch (err) {
    await writer.abort();
    throw err;
  } finally {
    await packs.close();
  }
  return writer.finish();
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
  const hostModules = new Map<string, Buffer>();
  for (const m of plan.modules) if (m.from.kind === 'host') hostModules.set(m.from.path, await readFile(m.from.path));
  const moduleItems = function* (): Generator<TarItem> {
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
      let content: TarContent;
      if (from.kind === 'image') {
        const ref = from.inode.content;
        if (!ref) throw new Error(`module ${from.imagePath} has no kept content`);
        size = ref.size;
        content = { kind: 'ref', ref };
      } else {
        const bytes = hostModules.get(from.path) as Buffer;
        size = bytes.length;
        content = { kind: 'bytes', bytes };
      }
      entries.push({ path: m.boxPath, item: { spec: { path: tarPath(m.boxPath, false), type: 'File', mode: m.mode & 0o1777, size, mtime }, content } });
    }
    entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    for (const e of entries) yield e.item;
  };

  // Layer 2: the image's files minus what cannot matter in Wasm.
  const rootfsItems = function* (): Generator<TarItem> {
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
        const target = containedSymlinkTarget(path, node.target);
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
      yield { spec: { path: tarPath(path, false), type: 'File', mode: inode.mode, size: ref.size, mtime }, content: { kind: 'ref', ref } };
    }
  };

  let moduleLayer: WrittenLayer;
  let rootfsLayer: WrittenLayer;
  const modulePath = join(outDir, 'module.tar.gz');
  const rootfsPath = join(outDir, 'rootfs.tar.gz');
  {
    // Both at once: with igzip each layer deflates in its own processes while this thread builds the tars.
    const [m, r] = await Promise.allSettled([writeLayer(moduleItems(), modulePath, input.gzip), writeLayer(rootfsItems(), rootfsPath, input.gzip)]);
    if (m.status === 'rejected') throw m.reason;
    if (r.status === 'rejected') throw r.reason;
    moduleLayer = m.value;
    rootfsLayer = r.value;
  }

  const labels: Record<string, string> = {
    ...(sourceConfig.config?.Labels ?? {}),
    [LABEL_STRATEGY]: plan.strategy,
    [LABEL_SOURCE_DIGEST]: sourceManifest.digest,
    [LABEL_CONVERTER_VERSION]: CONVERTER_VERSION,
    [LABEL_GZIP]: input.gzip.name,
    [LABEL_RUNNER]: plan.runner,
    ...plan.labels,
  };
  const src = sourceConfig.config ?? {};
  const boxConfig: ImageConfig = {
    ...(sourceConfig.created ? { created: sourceConfig.created } : {}),
    architecture: BOX_ARCHITECTURE,
    os: BOX_OS,
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
      [ANNOTATION_STRATEGY]: plan.strategy,
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
    platform: { os: BOX_OS, architecture: BOX_ARCHITECTURE },
  };
  if (tag) entry.annotations = { 'org.opencontainers.image.ref.name': tag };
  index.manifests = index.manifests.filter((d) =>
    tag ? d.annotations?.['org.opencontainers.image.ref.name'] !== tag : d.digest !== box.manifest.digest,
  );
  index.manifests.push(entry);
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
}
