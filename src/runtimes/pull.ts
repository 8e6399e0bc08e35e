// Runtime registries: a repository of runtime artifacts (RUNTIME_ARTIFACT_TYPE) tagged `<name>-<major.minor>`,
// e.g. ghcr.io/boxproxy/runtimes:python-3.11. Pulling copies one into a catalog; pushing publishes a catalog entry.
import { upstreamSchema } from '../config/schema.js';
import { sha256 } from '../oci/digest.js';
import { OCI_MANIFEST } from '../oci/mediatypes.js';
import { isRepositoryName } from '../oci/names.js';
import type { Descriptor } from '../oci/types.js';
import { silentLogger, type Logger } from '../ops/log.js';
import { UpstreamClient } from '../upstream/client.js';
import { headerValue, type UpstreamResponse } from '../upstream/types.js';
import { readSmall } from '../image/source.js';
import { parseRuntimeArtifact, type CatalogEntry } from './artifact.js';
import type { RuntimeStore } from './store.js';
import { parseMajorMinor } from './versions.js';

/** Runtime manifests are a few hundred bytes; anything this large is not one. */
const MAX_MANIFEST_BYTES = 1024 * 1024;

export interface RuntimeRegistry {
  /** As written: 127.0.0.1:5001, ghcr.io. */
  host: string;
  repository: string;
  /** http(s)://endpoint */
  origin: string;
}

export interface RuntimeRegistryOptions {
  /** Plain http (loopback hosts always use it). */
  insecure?: boolean;
}

/** The tag pulled for a wanted runtime: `<name>-<major.minor>` (undefined when `version` has no major.minor). */
export function runtimeTag(name: string, version: string): string | undefined {
  const v = parseMajorMinor(version);
  return v ? `${name}-${v[0]}.${v[1]}` : undefined;
}

function isLoopback(host: string): boolean {
  const name = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return name === 'localhost' || name === '::1' || /^127\.\d+\.\d+\.\d+$/.test(name);
}

/** Parses `host[:port]/repository` (no tag: tags are chosen per runtime). */
export function parseRuntimeRegistry(registry: string, opts: RuntimeRegistryOptions = {}): RuntimeRegistry {
  const slash = registry.indexOf('/');
  const host = registry.slice(0, slash);
  const repository = registry.slice(slash + 1);
  if (slash <= 0 || !/^[a-zA-Z0-9.-]+(?::\d{1,5})?$/.test(host) || !isRepositoryName(repository)) {
    throw new Error(`runtime registry ${registry} is not host[:port]/repository (e.g. ghcr.io/boxproxy/runtimes)`);
  }
  const endpoint = host === 'docker.io' ? 'registry-1.docker.io' : host;
  const scheme = opts.insecure || isLoopback(host) ? 'http' : 'https';
  return { host, repository, origin: `${scheme}://${endpoint}` };
}

/** The registry has no artifact under the wanted tag (the only pull failure a catalog falls back from). */
export class RuntimeNotInRegistryError extends Error {
  override name = 'RuntimeNotInRegistryError';
}


/**
 * Pulls `<registry>:<name>-<major.minor>` into `store`: the manifest (checked to be a runtime artifact of that
 * name and major.minor), then its config and layer blobs, each verified against its digest and size before it
 * lands, and last the index entry. Anonymous pull only; a tag that is not there is a RuntimeNotInRegistryError.
 */
export async function pullRuntime(
  store: RuntimeStore,
  registry: string,
  name: string,
  version: string,
  opts: RuntimeRegistryOptions & { logger?: Logger } = {},
): Promise<CatalogEntry> {
  const reg = parseRuntimeRegistry(registry, opts);
  const tag = runtimeTag(name, version);
  if (!tag) throw new Error(`runtime ${name} ${version || '(no version)'}: a registry pull needs a major.minor version`);
  const ref = `${reg.host}/${reg.repository}:${tag}`;
  const config = upstreamSchema.parse({ name: reg.host, url: reg.origin, insecure: Boolean(opts.insecure) });
  const client = new UpstreamClient(config, opts.logger ?? silentLogger());
  const get = async (path: string, headers: Record<string, string> = {}): Promise<UpstreamResponse> => {
    try {
      return await client.request({ method: 'GET', path: `/v2/${reg.repository}/${path}`, repository: reg.repository, headers });
    } catch (err) {
      throw new Error(`pulling runtime ${ref}: ${(err as Error).message}`);
    }
  };
  try {
    const res = await get(`manifests/${tag}`, { accept: OCI_MANIFEST });
    if (res.status === 404) {
      res.body.destroy();
      throw new RuntimeNotInRegistryError(`runtime registry has no ${ref}`);
    }
    if (res.status !== 200) {
      res.body.destroy();
      const why = res.status === 401 || res.status === 403 ? ' (runtime registries must allow anonymous pulls)' : '';
      throw new Error(`pulling runtime ${ref}: the registry answered ${res.status}${why}`);
    }
    const manifestBytes = await readSmall(res.body, MAX_MANIFEST_BYTES, `manifest ${ref}`);
    const digest = sha256(manifestBytes);
    const announced = headerValue(res, 'docker-content-digest');
    if (announced !== undefined && announced !== digest) throw new Error(`pulling runtime ${ref}: manifest bytes hash to ${digest}, the registry says ${announced}`);
    const artifact = parseRuntimeArtifact(manifestBytes, `${ref} (${digest})`);
    if (artifact.name !== name || runtimeTag(name, artifact.version) !== tag) {
      throw new Error(`pulling runtime ${ref}: the artifact holds ${artifact.name} ${artifact.version}, not ${name} ${version}`);
    }
    const blobs: Descriptor[] = [artifact.manifest.config, ...artifact.manifest.layers];
    for (const blob of blobs) {
      const got = await get(`blobs/${blob.digest}`);
      if (got.status !== 200) {
        got.body.destroy();
        throw new Error(`pulling runtime ${ref}: blob ${blob.digest} ${got.status === 404 ? 'is missing from the registry' : `answered ${got.status}`}`);
      }
      try {
        await store.putBlob(blob, got.body);
      } catch (err) {
        throw new Error(`pulling runtime ${ref}: blob ${blob.digest}: ${(err as Error).message}`);
      }
    }
    const descriptor = await store.addManifest(manifestBytes);
    return { name: artifact.name, version: artifact.version, descriptor };
  } finally {
    await client.close();
  }
}

/** Reads a blob named by a manifest, for pushing. */
export type BlobReader = (descriptor: Descriptor) => Promise<Buffer>;

async function expectStatus(res: Response, want: number, what: string): Promise<void> {
  if (res.status === want) {
    await res.arrayBuffer();
    return;
  }
  const text = (await res.text()).slice(0, 500);
  const why = res.status === 401 || res.status === 403 ? ' (pushing supports registries that take unauthenticated pushes only)' : '';
  throw new Error(`${what}: the registry answered ${res.status}${why}${text ? `: ${text.trim()}` : ''}`);
}

/**
 * Pushes a manifest and the blobs it names to `<registry>:<tag>`: blobs the registry lacks as monolithic uploads
 * (POST, then PUT with the digest), then the manifest. No credentials are sent. Returns the manifest digest.
 */
export async function pushArtifact(
  registry: string,
  tag: string,
  manifestBytes: Buffer,
  readBlob: BlobReader,
  opts: RuntimeRegistryOptions = {},
): Promise<string> {
  const reg = parseRuntimeRegistry(registry, opts);
  const base = `${reg.origin}/v2/${reg.repository}`;
  const manifest = JSON.parse(manifestBytes.toString('utf8')) as { mediaType?: string; config: Descriptor; layers: Descriptor[] };
  const seen = new Set<string>();
  for (const blob of [manifest.config, ...manifest.layers]) {
    if (seen.has(blob.digest)) continue;
    seen.add(blob.digest);
    const head = await fetch(`${base}/blobs/${blob.digest}`, { method: 'HEAD' });
    if (head.status === 200) continue;
    const bytes = await readBlob(blob);
    const start = await fetch(`${base}/blobs/uploads/`, { method: 'POST' });
    const location = start.headers.get('location');
    await expectStatus(start, 202, `starting the upload of ${blob.digest} to ${registry}`);
    if (!location) throw new Error(`starting the upload of ${blob.digest} to ${registry}: no Location header`);
    const upload = new URL(location, base);
    upload.searchParams.set('digest', blob.digest);
    const put = await fetch(upload, { method: 'PUT', body: new Uint8Array(bytes), headers: { 'content-type': 'application/octet-stream' } });
    await expectStatus(put, 201, `uploading ${blob.digest} to ${registry}`);
  }
  const digest = sha256(manifestBytes);
  const put = await fetch(`${base}/manifests/${tag}`, {
    method: 'PUT',
    body: new Uint8Array(manifestBytes),
    headers: { 'content-type': manifest.mediaType ?? OCI_MANIFEST },
  });
  const stored = put.headers.get('docker-content-digest');
  await expectStatus(put, 201, `pushing the manifest ${registry}:${tag}`);
  if (stored && stored !== digest) throw new Error(`pushing the manifest ${registry}:${tag}: the registry stored ${stored}, not ${digest}`);
  return digest;
}

/**
 * Publishes the catalog entry `name` `version` (exact, or the newest patch of a major.minor) to
 * `<registry>:<name>-<major.minor>`, byte for byte, so a pull yields the same digests.
 */
export async function pushRuntime(
  store: RuntimeStore,
  name: string,
  version: string,
  registry: string,
  opts: RuntimeRegistryOptions = {},
): Promise<{ reference: string; digest: string }> {
  const entry = await store.get(name, version);
  if (!entry) throw new Error(`runtime catalog ${store.dir} has no ${name} ${version}`);
  const manifestBytes = await store.readBlob(entry.descriptor.digest);
  const artifact = parseRuntimeArtifact(manifestBytes, `runtime catalog entry ${name} ${entry.version}`);
  const tag = runtimeTag(artifact.name, artifact.version);
  if (!tag) throw new Error(`runtime ${name} ${artifact.version}: no major.minor to tag it with`);
  const digest = await pushArtifact(registry, tag, manifestBytes, (d) => store.readBlob(d.digest), opts);
  return { reference: `${registry}:${tag}`, digest };
}
