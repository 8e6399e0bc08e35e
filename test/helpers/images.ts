// Small test images built without docker: an OCI image layout written here (layers are real tars, so containerd
// can unpack them and diff_ids are right), optionally multi-platform, optionally with Docker schema2 media types,
// pushed to a registry with skopeo.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { hexOf, sha256 } from '../../src/oci/digest.js';
import {
  DOCKER_CONFIG,
  DOCKER_LAYER_GZIP,
  DOCKER_LIST,
  DOCKER_MANIFEST,
  OCI_CONFIG,
  OCI_INDEX,
  OCI_LAYER_GZIP,
  OCI_LAYER_TAR,
  OCI_MANIFEST,
} from '../../src/oci/mediatypes.js';
import type { Descriptor, Platform } from '../../src/oci/types.js';
import { TAR_END, tarBuffer, tarHeader, tarPadding } from '../../src/convert/tar-writer.js';
import { makeTempDir, removeTempDir, run, type RunResult } from './proc.js';
import type { Credentials } from './registry.js';

const EPOCH = new Date(0);

export type ImageFormat = 'oci' | 'docker';

export interface BuildImageOptions {
  /** Tag recorded in the layout's index.json (default "latest"). */
  tag?: string;
  /** OCI (default) or Docker schema2 media types for manifests, configs and layers. */
  format?: ImageFormat;
  /** One image per platform; more than one (or `index: true`) makes an index / manifest list. Default: this host. */
  platforms?: Platform[];
  /** Wrap a single platform in an index too. */
  index?: boolean;
  /** Makes the content unique, so images of different tests never share digests. */
  seed?: string;
  /** Adds an uncompressed layer holding one file of this many random bytes (for herd tests and benchmarks). */
  bigLayerBytes?: number;
}

export interface BuiltManifest {
  digest: string;
  mediaType: string;
  size: number;
  platform: Platform;
  config: Descriptor;
  layers: Descriptor[];
}

export interface BuiltImage {
  /** The layout directory: an OCI image layout, or skopeo's `dir:` layout for Docker images. */
  dir: string;
  /** skopeo source reference of the image, e.g. `oci:/tmp/x:latest`. */
  source: string;
  tag: string;
  format: ImageFormat;
  /** Digest and media type of what the tag points at (an index when multi-platform). */
  digest: string;
  mediaType: string;
  manifests: BuiltManifest[];
  /** Config and layer descriptors of all manifests, without duplicates. */
  blobs: Descriptor[];
  /** Removes the layout directory. */
  remove(): Promise<void>;
}

/** This machine's platform in OCI terms, so containerd pulls without --platform. */
export function hostPlatform(): Platform {
  const architecture = ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x' } as Record<string, string>)[process.arch] ?? process.arch;
  return { os: 'linux', architecture };
}

/**
 * A directory blobs are written into. OCI layouts keep blobs under blobs/sha256/; skopeo's `dir:` layout (used
 * for Docker images, because skopeo's oci transport skips index.json entries with Docker media types) keeps them
 * at the top, named by hex digest.
 */
export interface BlobDir {
  dir: string;
  kind: 'oci' | 'dir';
}

function blobPath(layout: BlobDir, digest: string): string {
  return layout.kind === 'dir' ? join(layout.dir, hexOf(digest)) : join(layout.dir, 'blobs', 'sha256', hexOf(digest));
}

async function putBlob(layout: BlobDir, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  await writeFile(blobPath(layout, digest), bytes);
  return digest;
}

/**
 * A layer tar holding one file of `size` random bytes, written to the layout
 * as it is generated (no gzip: random bytes do not compress). Its digest is
 * also its diff_id.
 */
export async function writeRandomLayer(layout: BlobDir, size: number, path = 'random.bin'): Promise<Descriptor> {
  const tmp = join(layout.dir, `random-${randomBytes(6).toString('hex')}.tmp`);
  const out = createWriteStream(tmp);
  const hash = createHash('sha256');
  let written = 0;
  const write = async (chunk: Buffer): Promise<void> => {
    hash.update(chunk);
    written += chunk.length;
    if (!out.write(chunk)) await once(out, 'drain');
  };
  await write(tarHeader({ path, type: 'File', mode: 0o644, size, mtime: EPOCH }));
  for (let left = size; left > 0; ) {
    const n = Math.min(left, 1 << 20);
    await write(randomBytes(n));
    left -= n;
  }
  await write(tarPadding(size));
  await write(TAR_END);
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  const digest = 'sha256:' + hash.digest('hex');
  await rename(tmp, blobPath(layout, digest));
  return { mediaType: OCI_LAYER_TAR, digest, size: written };
}

export async function buildImage(opts: BuildImageOptions = {}): Promise<BuiltImage> {
  const tag = opts.tag ?? 'latest';
  const format = opts.format ?? 'oci';
  const platforms = opts.platforms ?? [hostPlatform()];
  const seed = opts.seed ?? randomBytes(8).toString('hex');
  const docker = format === 'docker';
  const dir = await makeTempDir('image');
  const layout: BlobDir = { dir, kind: docker ? 'dir' : 'oci' };
  if (docker) {
    await writeFile(join(dir, 'version'), 'Directory Transport Version: 1.1\n');
  } else {
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  }

  // Shared across platforms, as base layers usually are: the herd and dedup paths see one blob many times.
  const big = opts.bigLayerBytes !== undefined ? await writeRandomLayer(layout, opts.bigLayerBytes) : undefined;

  const manifests: BuiltManifest[] = [];
  for (const platform of platforms) {
    const plat = `${platform.os}/${platform.architecture}${platform.variant ? '/' + platform.variant : ''}`;
    const tar = tarBuffer([
      { path: 'etc/', type: 'Directory', mode: 0o755, mtime: EPOCH },
      { path: 'etc/boxproxy-test', type: 'File', mode: 0o644, mtime: EPOCH, data: `seed ${seed}\nplatform ${plat}\n` },
      { path: 'hello.txt', type: 'File', mode: 0o644, mtime: EPOCH, data: `hello from ${plat}\n` },
    ]);
    const gz = gzipSync(tar);
    const layers: Descriptor[] = [{ mediaType: docker ? DOCKER_LAYER_GZIP : OCI_LAYER_GZIP, digest: await putBlob(layout, gz), size: gz.length }];
    const diffIds = [sha256(tar)];
    if (big) {
      // Same bytes in both formats; Docker schema2 names an uncompressed layer rootfs.diff.tar.
      layers.push(docker ? { ...big, mediaType: 'application/vnd.docker.image.rootfs.diff.tar' } : big);
      diffIds.push(big.digest);
    }
    const configJson = Buffer.from(
      JSON.stringify({
        created: EPOCH.toISOString(),
        architecture: platform.architecture,
        os: platform.os,
        ...(platform.variant ? { variant: platform.variant } : {}),
        config: { Cmd: ['/bin/true'], Labels: { 'org.boxproxy.test.seed': seed } },
        rootfs: { type: 'layers', diff_ids: diffIds },
        history: [{ created: EPOCH.toISOString(), created_by: 'boxproxy test helper' }],
      }),
    );
    const config: Descriptor = { mediaType: docker ? DOCKER_CONFIG : OCI_CONFIG, digest: await putBlob(layout, configJson), size: configJson.length };
    const manifestType = docker ? DOCKER_MANIFEST : OCI_MANIFEST;
    const manifestJson = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: manifestType, config, layers }));
    manifests.push({ digest: await putBlob(layout, manifestJson), mediaType: manifestType, size: manifestJson.length, platform, config, layers });
  }

  let top: Descriptor;
  if (manifests.length === 1 && !opts.index) {
    const m = manifests[0] as BuiltManifest;
    top = { mediaType: m.mediaType, digest: m.digest, size: m.size };
  } else {
    const indexType = docker ? DOCKER_LIST : OCI_INDEX;
    const indexJson = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: indexType,
        manifests: manifests.map((m) => ({ mediaType: m.mediaType, digest: m.digest, size: m.size, platform: m.platform })),
      }),
    );
    top = { mediaType: indexType, digest: await putBlob(layout, indexJson), size: indexJson.length };
  }
  if (docker) {
    // dir: layout: the top manifest is manifest.json, instances of a list are <hex>.manifest.json.
    await rename(blobPath(layout, top.digest), join(dir, 'manifest.json'));
    if (top.mediaType === DOCKER_LIST) {
      for (const m of manifests) await rename(blobPath(layout, m.digest), join(dir, `${hexOf(m.digest)}.manifest.json`));
    }
  } else {
    await writeFile(
      join(dir, 'index.json'),
      JSON.stringify({ schemaVersion: 2, manifests: [{ ...top, annotations: { 'org.opencontainers.image.ref.name': tag } }] }),
    );
  }

  const blobs = new Map<string, Descriptor>();
  for (const m of manifests) for (const d of [m.config, ...m.layers]) blobs.set(d.digest, d);
  return {
    dir,
    source: docker ? `dir:${dir}` : `oci:${dir}:${tag}`,
    tag,
    format,
    digest: top.digest,
    mediaType: top.mediaType,
    manifests,
    blobs: [...blobs.values()],
    remove: () => removeTempDir(dir),
  };
}

/** Runs skopeo with a policy that accepts anything (tests never verify signatures) and no stored logins. */
export async function skopeo(args: readonly string[], opts: { allowFailure?: boolean } = {}): Promise<RunResult> {
  return run('skopeo', ['--insecure-policy', ...args], {
    ...opts,
    // Keep skopeo away from any auth.json of the machine: clients here are anonymous unless told otherwise.
    env: { ...process.env, REGISTRY_AUTH_FILE: '/dev/null/none.json', XDG_RUNTIME_DIR: '/dev/null/none' },
  });
}

export interface PushTarget {
  /** Registry host as written in references, e.g. 127.0.0.1:5001. */
  host: string;
  credentials?: Credentials | undefined;
}

/** Pushes the layout's tag (all platforms, digests preserved) to `<host>/<repo>:<tag>`; returns the reference. */
export async function pushImage(image: BuiltImage, target: PushTarget, repo: string, tag = image.tag): Promise<string> {
  const ref = `${target.host}/${repo}:${tag}`;
  const creds = target.credentials ? ['--dest-creds', `${target.credentials.username}:${target.credentials.password}`] : ['--dest-no-creds'];
  await skopeo(['copy', '--all', '--preserve-digests', '--quiet', '--dest-tls-verify=false', ...creds, image.source, `docker://${ref}`]);
  return ref;
}

export interface InspectOptions {
  credentials?: Credentials | undefined;
}

function credArgs(opts: InspectOptions): string[] {
  return opts.credentials ? ['--creds', `${opts.credentials.username}:${opts.credentials.password}`] : ['--no-creds'];
}

/** The raw manifest `ref` resolves to (an index stays an index), as skopeo received it. */
export async function skopeoInspectRaw(ref: string, opts: InspectOptions = {}): Promise<string> {
  return (await skopeo(['inspect', '--raw', '--tls-verify=false', ...credArgs(opts), `docker://${ref}`])).stdout;
}

/** Digest of the manifest `ref` resolves to, computed from the exact bytes skopeo received. */
export async function skopeoInspectDigest(ref: string, opts: InspectOptions = {}): Promise<string> {
  return sha256(Buffer.from(await skopeoInspectRaw(ref, opts), 'utf8'));
}

/** skopeo's own view of the image for this host's platform (Digest, Layers, ...). */
export async function skopeoInspect(ref: string, opts: InspectOptions = {}): Promise<{ Digest: string; Layers: string[]; Architecture: string; Os: string }> {
  return JSON.parse((await skopeo(['inspect', '--tls-verify=false', ...credArgs(opts), `docker://${ref}`])).stdout) as {
    Digest: string;
    Layers: string[];
    Architecture: string;
    Os: string;
  };
}

/**
 * Copies `ref` (all platforms unless `all: false`, digests preserved) with skopeo into a fresh `dir:` layout, which
 * keeps manifests byte for byte whatever their media type, and returns the digest of the top manifest it got.
 */
export async function skopeoCopyToDir(
  ref: string,
  opts: InspectOptions & { all?: boolean } = {},
): Promise<{ dir: string; digest: string; remove(): Promise<void> }> {
  const dir = await makeTempDir('pulled');
  const creds = opts.credentials ? ['--src-creds', `${opts.credentials.username}:${opts.credentials.password}`] : ['--src-no-creds'];
  try {
    await skopeo([
      'copy', ...(opts.all === false ? [] : ['--all']), '--preserve-digests', '--quiet', '--src-tls-verify=false', ...creds,
      `docker://${ref}`, `dir:${join(dir, 'image')}`,
    ]);
    const digest = sha256(await readFile(join(dir, 'image', 'manifest.json')));
    return { dir: join(dir, 'image'), digest, remove: () => removeTempDir(dir) };
  } catch (err) {
    await removeTempDir(dir);
    throw err;
  }
}

/**
 * Asserts that skopeo gets exactly `digest` for `ref`: `skopeo inspect --raw` (unless `inspect` is false) and
 * `skopeo copy --all` into a `dir:` layout, which keeps the top manifest byte for byte.
 */
export async function assertSkopeoGetsDigest(ref: string, digest: string, opts: { inspect?: boolean } = {}): Promise<void> {
  if (opts.inspect !== false) assert.equal(await skopeoInspectDigest(ref), digest, ref);
  const pulled = await skopeoCopyToDir(ref);
  try {
    assert.equal(pulled.digest, digest, ref);
  } finally {
    await pulled.remove();
  }
}
