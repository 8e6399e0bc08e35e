// Packaging runtimes into the catalog: a build's output directory (or any set of files) becomes a runtime
// artifact whose bytes depend only on its input (sorted entries, uid/gid 0, one mtime, fixed gzip level).
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readdir, readFile, rename, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { constants as zlibConstants, createGzip } from 'node:zlib';
import { sha256 } from '../oci/digest.js';
import { OCI_LAYER_GZIP, OCI_MANIFEST } from '../oci/mediatypes.js';
import type { Descriptor, ImageManifest } from '../oci/types.js';
import { tarHeader, tarPadding, TAR_END, type TarEntrySpec } from '../convert/tar-writer.js';
import {
  ANNOTATION_RUNTIME_BUILD_KEY,
  ANNOTATION_RUNTIME_NAME,
  ANNOTATION_RUNTIME_VERSION,
  RUNTIME_ARTIFACT_TYPE,
  RUNTIME_CONFIG_TYPE,
  TITLE,
} from './artifact.js';
import type { RuntimeBuildManifest } from './build.js';
import { writeAtomic, type RuntimeStore } from './store.js';

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

/** Adds a runtime artifact to `store` (replacing one with the same name and version); returns its descriptor. */
export async function packageRuntime(store: RuntimeStore, input: PackageInput): Promise<Descriptor> {
  const blobs = await store.ensureLayout();
  const tmp = join(blobs, `.layer.${randomUUID()}.tmp`);
  const layer = await writeTarGz(input.files, new Date(input.mtime * 1000), tmp);
  await rename(tmp, store.blobPath(layer.digest));
  const configBytes = Buffer.from(JSON.stringify(input.config));
  const configDigest = sha256(configBytes);
  await writeAtomic(store.blobPath(configDigest), configBytes);
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
  return store.addManifest(Buffer.from(JSON.stringify(manifest)));
}

/** Adds a runtime build's output directory (scripts/runtimes/<name>/build.sh) to `store`. */
export async function packageBuild(store: RuntimeStore, dir: string, manifest: RuntimeBuildManifest): Promise<Descriptor> {
  return packageRuntime(store, {
    name: manifest.name,
    version: manifest.version,
    files: await listFiles(dir),
    config: manifest,
    mtime: manifest.sourceDateEpoch,
    buildKey: manifest.cacheKey,
  });
}
