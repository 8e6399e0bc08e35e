import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants as zlibConstants, createGzip } from 'node:zlib';
import { extract } from 'tar';
import { DigestVerifier, hexOf, isDigest, sha256 } from '../oci/digest.js';
import { OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST } from '../oci/mediatypes.js';
import type { Descriptor, ImageIndex, ImageManifest } from '../oci/types.js';
import { tarHeader, tarPadding, TAR_END, type TarEntrySpec } from '../convert/tar-writer.js';
import {
  NpmRuntimeCatalog,
  nearestVersion,
  parseRubyVersion,
  type PythonRuntime,
  type RubyRuntime,
  type RuntimeCatalog,
} from '../convert/runtimes.js';
import { pullRuntime, RuntimeNotInRegistryError, runtimeTag } from './pull.js';
import { buildRuntime, defaultRuntimeCacheDir, type BuildOptions, type RuntimeBuildManifest } from './build.js';

/** The catalog's artifacts: OCI 1.1 artifact manifests, one tar+gzip layer holding the runtime's files. */
export const RUNTIME_ARTIFACT_TYPE = 'application/vnd.dev.boxproxy.runtime.v1';
/** Config blob: the runtime's build manifest (or, for imported runtimes, where they came from). */
export const RUNTIME_CONFIG_TYPE = 'application/vnd.dev.boxproxy.runtime.config.v1+json';
export const ANNOTATION_RUNTIME_NAME = 'dev.boxproxy.runtime.name';
export const ANNOTATION_RUNTIME_VERSION = 'dev.boxproxy.runtime.version';
/** The build's input key (scripts/runtimes/<name>/build.sh): a catalog never packages the same build twice. */
export const ANNOTATION_RUNTIME_BUILD_KEY = 'dev.boxproxy.runtime.build-key';
const REF_NAME = 'org.opencontainers.image.ref.name';
const TITLE = 'org.opencontainers.image.title';

export function defaultCatalogDir(): string {
  return process.env.BOXPROXY_RUNTIME_CATALOG || join(defaultRuntimeCacheDir(), 'catalog');
}

export interface RuntimeFile {
  /** Path inside the artifact (and the unpacked runtime), "/"-separated, relative. */
  path: string;
  hostPath: string;
  mode: number;
}

export interface PackageInput {
  name: string;
  version: string;
  files: RuntimeFile[];
  config: unknown;
  /** Entry mtime in the tar (seconds since the epoch): fixed so the artifact is byte-identical per input. */
  mtime: number;
  buildKey?: string;
}

export interface CatalogEntry {
  name: string;
  version: string;
  descriptor: Descriptor;
}

/** A manifest that passed RuntimeStore.parseArtifact. */
export interface RuntimeArtifact {
  name: string;
  version: string;
  manifest: ImageManifest;
}

export interface FoundRuntime {
  name: string;
  version: string;
  /** The artifact manifest's digest. */
  digest: string;
  /** Unpacked files on this machine. */
  dir: string;
  config: unknown;
}

/** Every file under `dir`, sorted by relative path (directories implied). */
async function listFiles(dir: string): Promise<RuntimeFile[]> {
  const out: RuntimeFile[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        const mode = (await stat(p)).mode & 0o111 ? 0o755 : 0o644;
        out.push({ path: relative(dir, p).split(sep).join('/'), hostPath: p, mode });
      }
    }
  };
  await walk(dir);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** A deterministic tar+gzip of `files` (sorted, parents first, uid/gid 0, one mtime); returns its descriptor facts. */
async function writeTarGz(files: readonly RuntimeFile[], mtime: Date, out: string): Promise<{ digest: string; size: number }> {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  async function* entries(): AsyncGenerator<Buffer> {
    const dirs = new Set<string>();
    for (const f of sorted) {
      const parts = f.path.split('/');
      for (let i = 1; i < parts.length; i++) {
        const d = parts.slice(0, i).join('/') + '/';
        if (dirs.has(d)) continue;
        dirs.add(d);
        yield tarHeader({ path: d, type: 'Directory', mode: 0o755, mtime });
      }
      const data = await readFile(f.hostPath);
      const spec: TarEntrySpec = { path: f.path, type: 'File', mode: f.mode, size: data.length, mtime };
      yield tarHeader(spec);
      yield data;
      yield tarPadding(data.length);
    }
    yield TAR_END;
  }
  const hash = createHash('sha256');
  let size = 0;
  const gzip = createGzip({ level: zlibConstants.Z_BEST_COMPRESSION });
  gzip.on('data', (c: Buffer) => {
    hash.update(c);
    size += c.length;
  });
  await pipeline(entries(), gzip, createWriteStream(out));
  return { digest: 'sha256:' + hash.digest('hex'), size };
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
async function writeAtomic(path: string, bytes: Buffer | string): Promise<void> {
  // Unique per call: conversion workers are threads of one process and may write the same file at once.
  const tmp = `${path}.${randomUUID()}.tmp`;
  await writeFile(tmp, bytes);
  await rename(tmp, path);
}

/** The catalog: an OCI image layout directory of runtime artifacts. */
export class RuntimeStore {
  constructor(readonly dir: string = defaultCatalogDir()) {}

  private blobPath(digest: string): string {
    return join(this.dir, 'blobs', 'sha256', hexOf(digest));
  }

  /** Adds a runtime artifact (replacing one with the same name and version); returns its manifest descriptor. */
  async add(input: PackageInput): Promise<Descriptor> {
    const blobs = await this.ensureLayout();
    const tmp = join(blobs, `.layer.${randomUUID()}.tmp`);
    const layer = await writeTarGz(input.files, new Date(input.mtime * 1000), tmp);
    await rename(tmp, this.blobPath(layer.digest));
    const configBytes = Buffer.from(JSON.stringify(input.config));
    const configDigest = sha256(configBytes);
    await writeAtomic(this.blobPath(configDigest), configBytes);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: RUNTIME_ARTIFACT_TYPE,
      config: { mediaType: RUNTIME_CONFIG_TYPE, digest: configDigest, size: configBytes.length },
      layers: [
        { mediaType: OCI_LAYER_GZIP, digest: layer.digest, size: layer.size, annotations: { [TITLE]: `${input.name}-${input.version}.tar.gz` } },
      ],
      annotations: {
        [ANNOTATION_RUNTIME_NAME]: input.name,
        [ANNOTATION_RUNTIME_VERSION]: input.version,
        ...(input.buildKey ? { [ANNOTATION_RUNTIME_BUILD_KEY]: input.buildKey } : {}),
      },
    };
    return this.addManifest(Buffer.from(JSON.stringify(manifest)));
  }

  /**
   * Parses an artifact manifest and checks it is a runtime artifact this catalog can hold (its type, its name and
   * version annotations, tar+gzip layers); throws saying what is wrong. `source` names where the bytes came from.
   */
  parseArtifact(manifestBytes: Buffer, source: string): RuntimeArtifact {
    let manifest: ImageManifest;
    try {
      manifest = JSON.parse(manifestBytes.toString('utf8')) as ImageManifest;
    } catch {
      throw new Error(`${source} is not a JSON manifest`);
    }
    if (manifest.mediaType !== OCI_MANIFEST || manifest.artifactType !== RUNTIME_ARTIFACT_TYPE) {
      throw new Error(
        `${source} is not a boxproxy runtime artifact (media type ${manifest.mediaType ?? 'none'}, artifact type ${manifest.artifactType ?? 'none'}; expected ${RUNTIME_ARTIFACT_TYPE})`,
      );
    }
    const name = manifest.annotations?.[ANNOTATION_RUNTIME_NAME];
    const version = manifest.annotations?.[ANNOTATION_RUNTIME_VERSION];
    if (!name || !version) throw new Error(`${source}: runtime artifact without ${ANNOTATION_RUNTIME_NAME} and ${ANNOTATION_RUNTIME_VERSION} annotations`);
    if (manifest.config?.mediaType !== RUNTIME_CONFIG_TYPE || !isDigest(manifest.config.digest)) throw new Error(`${source}: runtime artifact config is not a ${RUNTIME_CONFIG_TYPE} sha256 blob`);
    if (!Array.isArray(manifest.layers) || manifest.layers.length === 0) throw new Error(`${source}: runtime artifact has no layers`);
    for (const l of manifest.layers) {
      if (l.mediaType !== OCI_LAYER_GZIP || !isDigest(l.digest)) throw new Error(`${source}: runtime layer ${l.digest} is not a tar+gzip sha256 blob`);
    }
    return { name, version, manifest };
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
    const { name, version, manifest } = this.parseArtifact(manifestBytes, `runtime artifact ${digest}`);
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

  private async ensureLayout(): Promise<string> {
    const blobs = join(this.dir, 'blobs', 'sha256');
    await mkdir(blobs, { recursive: true });
    await writeAtomic(join(this.dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    return blobs;
  }

  /** Adds a runtime build's output directory (scripts/runtimes/<name>/build.sh). */
  async addBuild(dir: string, manifest: RuntimeBuildManifest): Promise<Descriptor> {
    return this.add({
      name: manifest.name,
      version: manifest.version,
      files: await listFiles(dir),
      config: manifest,
      mtime: manifest.sourceDateEpoch,
      buildKey: manifest.cacheKey,
    });
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
    const candidates = (await this.list()).filter((e) => e.name === name && parseRubyVersion(e.version));
    const pick = nearestVersion(
      candidates.map((e) => parseRubyVersion(e.version) as [number, number]),
      parseRubyVersion(version),
    );
    if (!pick) return undefined;
    return candidates
      .filter((e) => {
        const v = parseRubyVersion(e.version) as [number, number];
        return v[0] === pick[0] && v[1] === pick[1];
      })
      .sort((a, b) => comparePatch(b.version, a.version))[0];
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

function comparePatch(a: string, b: string): number {
  const pa = a.split(/[.+-]/).map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split(/[.+-]/).map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** `findRuntime(name, version)` on the default (or given) catalog. */
export async function findRuntime(name: string, version: string, catalogDir?: string): Promise<FoundRuntime | undefined> {
  return new RuntimeStore(catalogDir).find(name, version);
}

/** Where conversions find runtimes (config `conversion.runtimes`). */
export interface RuntimeSourceOptions {
  /** Catalog directory; default defaultCatalogDir(). */
  catalog?: string;
  /** Repository of runtime artifacts tagged `<name>-<major.minor>` (ghcr.io/boxproxy/runtimes), pulled on a miss. */
  registry?: string;
  /** Reach the registry over plain http (loopback hosts always are). */
  insecure?: boolean;
}

/**
 * The RuntimeCatalog conversions use: runtimes from the OCI-layout catalog, pulled into it from a runtime
 * registry when it lacks the wanted major.minor, with ruby.wasm from npm packages behind the same interface
 * (a catalog `ruby` artifact, when one was imported or pulled, wins).
 */
export class OciRuntimeCatalog implements RuntimeCatalog {
  readonly store: RuntimeStore;
  private readonly npm: RuntimeCatalog;
  private readonly registry: string | undefined;
  private readonly insecure: boolean;
  /** One pull per tag per catalog object; false when the registry has no such tag. */
  private readonly pulls = new Map<string, Promise<boolean>>();

  constructor(opts: { dir?: string; npm?: RuntimeCatalog; registry?: string; insecure?: boolean } = {}) {
    this.store = new RuntimeStore(opts.dir);
    this.npm = opts.npm ?? new NpmRuntimeCatalog();
    this.registry = opts.registry;
    this.insecure = opts.insecure ?? false;
  }

  /** Options from config (`catalog` is the directory). */
  static fromOptions(opts: RuntimeSourceOptions = {}): OciRuntimeCatalog {
    return new OciRuntimeCatalog({
      ...(opts.catalog !== undefined ? { dir: opts.catalog } : {}),
      ...(opts.registry !== undefined ? { registry: opts.registry } : {}),
      ...(opts.insecure !== undefined ? { insecure: opts.insecure } : {}),
    });
  }

  /**
   * The local entry of the wanted major.minor; else, with a registry, `<registry>:<name>-<major.minor>` pulled
   * into the store; else the nearest local entry. Pull failures other than "no such tag" are thrown: a
   * conversion fails (and is retried later) rather than settling for another version.
   */
  private async find(name: string, version: string): Promise<FoundRuntime | undefined> {
    const want = parseRubyVersion(version);
    const local = await this.store.nearest(name, version);
    const exact = local !== undefined && want !== undefined && runtimeTag(name, local.version) === runtimeTag(name, version);
    if (!exact && this.registry !== undefined && want !== undefined) {
      const key = runtimeTag(name, version) as string;
      let pull = this.pulls.get(key);
      if (!pull) {
        pull = pullRuntime(this.store, this.registry, name, version, { insecure: this.insecure }).then(
          () => true,
          (err: unknown) => {
            if (err instanceof RuntimeNotInRegistryError) return false;
            throw err;
          },
        );
        this.pulls.set(key, pull);
      }
      if (await pull) return this.store.find(name, version);
    }
    return local ? this.store.unpack(local) : undefined;
  }

  async python(version: string): Promise<PythonRuntime | undefined> {
    const found = await this.find('python', version);
    if (!found) return undefined;
    const files = (found.config as Partial<RuntimeBuildManifest>).files;
    return {
      version: found.version,
      wasmPath: join(found.dir, files?.interpreter ?? 'python.wasm'),
      stdlibDir: join(found.dir, files?.stdlib ?? `lib/python${found.version.split('.').slice(0, 2).join('.')}`),
      artifact: `python@${found.version} ${found.digest}`,
    };
  }

  async ruby(version: string): Promise<RubyRuntime | undefined> {
    const found = await this.find('ruby', version);
    if (found) {
      return { version: found.version, wasmPath: join(found.dir, 'ruby+stdlib.wasm'), package: `ruby@${found.version} ${found.digest}` };
    }
    return this.npm.ruby(version);
  }
}

/** Copies the npm ruby.wasm packages into the catalog as `ruby` artifacts (so a proxy can ship them the same way). */
export async function importNpmRuby(store: RuntimeStore, npm: RuntimeCatalog = new NpmRuntimeCatalog(), versions: readonly string[] = ['3.3', '3.4']): Promise<Descriptor[]> {
  const out: Descriptor[] = [];
  for (const v of versions) {
    const rt = await npm.ruby(v);
    if (!rt || rt.version !== v) continue;
    out.push(
      await store.add({
        name: 'ruby',
        version: rt.version,
        files: [{ path: 'ruby+stdlib.wasm', hostPath: rt.wasmPath, mode: 0o755 }],
        config: { name: 'ruby', version: rt.version, source: rt.package ?? 'npm' },
        mtime: 0,
      }),
    );
  }
  return out;
}

/**
 * Builds a runtime (cached by its inputs) and makes sure the catalog holds that exact build; returns the
 * catalog. Tests, the benchmark and `boxproxy runtimes build` share it, so CPython is built once per cache.
 */
export async function ensureBuiltRuntime(name: 'python', opts: BuildOptions & { catalogDir?: string } = {}): Promise<OciRuntimeCatalog> {
  const built = await buildRuntime(name, opts);
  const catalog = new OciRuntimeCatalog(opts.catalogDir ? { dir: opts.catalogDir } : {});
  const present = (await catalog.store.list()).some(
    (e) => e.name === name && e.descriptor.annotations?.[ANNOTATION_RUNTIME_BUILD_KEY] === built.manifest.cacheKey,
  );
  if (!present || opts.force) await catalog.store.addBuild(built.dir, built.manifest);
  return catalog;
}
