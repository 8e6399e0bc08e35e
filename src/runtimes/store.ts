// The runtime catalog on disk: an OCI image layout of runtime artifacts (index.json names each
// `<name>-<version>`), with every blob checked against its digest when written and when read, and artifacts
// unpacked once per digest for conversions to use.
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract } from 'tar';
import { DigestVerifier, hexOf, sha256 } from '../oci/digest.js';
import { OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST } from '../oci/mediatypes.js';
import type { Descriptor, ImageIndex, ImageManifest } from '../oci/types.js';
import {
  ANNOTATION_RUNTIME_NAME,
  ANNOTATION_RUNTIME_VERSION,
  parseRuntimeArtifact,
  REF_NAME,
  RUNTIME_ARTIFACT_TYPE,
  type CatalogEntry,
} from './artifact.js';
import { defaultCatalogDir } from './dirs.js';
import { comparePatch, pickNearest } from './versions.js';

export interface FoundRuntime {
  name: string;
  version: string;
  /** The artifact manifest's digest. */
  digest: string;
  /** Unpacked files on this machine. */
  dir: string;
  config: unknown;
}

async function readIndex(dir: string): Promise<ImageIndex> {
  try {
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as ImageIndex;
    if (Array.isArray(index.manifests)) return index;
  } catch {
    // No catalog yet.
  }
  return { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] };
}

/** Writes a file by rename so readers never see half of it. */
export async function writeAtomic(path: string, bytes: Buffer | string): Promise<void> {
  // Unique per call: conversion workers are threads of one process and may write the same file at once.
  const tmp = `${path}.${randomUUID()}.tmp`;
  await writeFile(tmp, bytes);
  await rename(tmp, path);
}

/** The catalog: an OCI image layout directory of runtime artifacts. */
export class RuntimeStore {
  constructor(readonly dir: string = defaultCatalogDir()) {}

  blobPath(digest: string): string {
    return join(this.dir, 'blobs', 'sha256', hexOf(digest));
  }



  /** Writes a blob, verified against its digest and size before it lands (a bad one leaves nothing behind). */
  async putBlob(descriptor: Pick<Descriptor, 'digest' | 'size'>, body: Readable): Promise<void> {
    const blobs = await this.ensureLayout();
    const tmp = join(blobs, `.blob.${randomUUID()}.tmp`);
    const verifier = new DigestVerifier(descriptor.digest);
    try {
      await pipeline(body, verifier, createWriteStream(tmp));
      if (verifier.bytes !== descriptor.size) throw new Error(`blob ${descriptor.digest} is ${verifier.bytes} bytes, the manifest says ${descriptor.size}`);
      await rename(tmp, this.blobPath(descriptor.digest));
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /**
   * Records a runtime artifact manifest whose config and layer blobs are already in the catalog, replacing the
   * entry of the same name and version; returns its descriptor in index.json.
   */
  async addManifest(manifestBytes: Buffer): Promise<Descriptor> {
    const digest = sha256(manifestBytes);
    const { name, version, manifest } = parseRuntimeArtifact(manifestBytes, `runtime artifact ${digest}`);
    for (const blob of [manifest.config, ...manifest.layers]) {
      const present = await stat(this.blobPath(blob.digest)).then((s) => s.size === blob.size, () => false);
      if (!present) throw new Error(`runtime catalog ${this.dir}: blob ${blob.digest} of ${name}-${version} is missing`);
    }
    const descriptor: Descriptor = {
      mediaType: OCI_MANIFEST,
      digest,
      size: manifestBytes.length,
      artifactType: RUNTIME_ARTIFACT_TYPE,
      annotations: { ...manifest.annotations, [REF_NAME]: `${name}-${version}` },
    };
    await writeAtomic(this.blobPath(digest), manifestBytes);
    const index = await readIndex(this.dir);
    index.manifests = index.manifests.filter((d) => d.annotations?.[REF_NAME] !== descriptor.annotations?.[REF_NAME]);
    index.manifests.push(descriptor);
    index.manifests.sort((a, b) => (a.annotations?.[REF_NAME] ?? '').localeCompare(b.annotations?.[REF_NAME] ?? ''));
    await writeAtomic(join(this.dir, 'index.json'), JSON.stringify(index, null, 2) + '\n');
    return descriptor;
  }

  /** A blob's bytes, checked against its digest. */
  async readBlob(digest: string): Promise<Buffer> {
    const bytes = await readFile(this.blobPath(digest));
    if (sha256(bytes) !== digest) throw new Error(`runtime catalog ${this.dir}: blob ${digest} is corrupt`);
    return bytes;
  }


  /** The layout's blobs directory, created (with oci-layout) when missing. */
  async ensureLayout(): Promise<string> {
    const blobs = join(this.dir, 'blobs', 'sha256');
    await mkdir(blobs, { recursive: true });
    await writeAtomic(join(this.dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    return blobs;
  }


  async list(): Promise<CatalogEntry[]> {
    const index = await readIndex(this.dir);
    const out: CatalogEntry[] = [];
    for (const d of index.manifests) {
      const name = d.annotations?.[ANNOTATION_RUNTIME_NAME];
      const version = d.annotations?.[ANNOTATION_RUNTIME_VERSION];
      if (d.artifactType === RUNTIME_ARTIFACT_TYPE && name && version) out.push({ name, version, descriptor: d });
    }
    return out;
  }

  /** The entry `name` at exactly `version`, or, when `version` is a major.minor, its newest patch. */
  async get(name: string, version: string): Promise<CatalogEntry | undefined> {
    const entries = (await this.list()).filter((e) => e.name === name);
    const exact = entries.find((e) => e.version === version);
    if (exact || !/^\d+\.\d+$/.test(version)) return exact;
    return entries.filter((e) => e.version.startsWith(version + '.')).sort((a, b) => comparePatch(b.version, a.version))[0];
  }


  /** The catalog's entry `name` nearest to `version` by major.minor (then the newest patch). */
  async nearest(name: string, version: string): Promise<CatalogEntry | undefined> {
    return pickNearest((await this.list()).filter((e) => e.name === name), (e) => e.version, version);
  }

  /** The catalog's runtime `name` nearest to `version` by major.minor (then the newest patch), unpacked. */
  async find(name: string, version: string): Promise<FoundRuntime | undefined> {
    const entry = await this.nearest(name, version);
    return entry ? this.unpack(entry) : undefined;
  }

  /** Unpacks an artifact once into <catalog>/unpacked/<manifest hex>, verifying every blob's digest. */
  async unpack(entry: CatalogEntry): Promise<FoundRuntime> {
    const digest = entry.descriptor.digest;
    const manifestBytes = await readFile(this.blobPath(digest));
    if (sha256(manifestBytes) !== digest) throw new Error(`runtime catalog ${this.dir}: manifest ${digest} is corrupt`);
    const manifest = JSON.parse(manifestBytes.toString('utf8')) as ImageManifest;
    const configBytes = await readFile(this.blobPath(manifest.config.digest));
    if (sha256(configBytes) !== manifest.config.digest) throw new Error(`runtime catalog ${this.dir}: config ${manifest.config.digest} is corrupt`);
    const config = JSON.parse(configBytes.toString('utf8')) as unknown;
    const target = join(this.dir, 'unpacked', hexOf(digest));
    const found: FoundRuntime = { name: entry.name, version: entry.version, digest, dir: target, config };
    try {
      await stat(join(target, '.complete'));
      return found;
    } catch {
      // Not unpacked yet.
    }
    await mkdir(join(this.dir, 'unpacked'), { recursive: true });
    const tmp = await mkdtemp(join(this.dir, 'unpacked', '.tmp-'));
    try {
      for (const layer of manifest.layers) {
        if (layer.mediaType !== OCI_LAYER_GZIP) throw new Error(`runtime artifact ${digest}: layer type ${layer.mediaType} is not tar+gzip`);
        await pipeline(createReadStream(this.blobPath(layer.digest)), new DigestVerifier(layer.digest), extract({ cwd: tmp, strict: true }));
      }
      await writeFile(join(tmp, '.complete'), digest + '\n');
      try {
        await rename(tmp, target);
      } catch (err) {
        // Another process unpacked it first: theirs is identical.
        if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    return found;
  }
}
