import { LRUCache } from 'lru-cache';
import { isDigest, sha256 } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { MANIFEST_TYPES, OCI_INDEX, OCI_MANIFEST, isIndexType } from '../oci/mediatypes.js';
import type { Descriptor, ImageIndex, ManifestBlob } from '../oci/types.js';
import { cacheLookups } from '../ops/metrics.js';
import type { Logger } from '../ops/log.js';
import type { BlobStore } from '../store/blobs.js';
import type { RecordStore, TagRecord } from '../store/records.js';
import { headerValue, type UpstreamResponse } from '../upstream/types.js';
import { isUpstreamOutage, upstreamFailure, upstreamStatusError } from './errors.js';
import { SingleFlight } from '../util/singleflight.js';
import type { RepoRef } from './upstreams.js';

/** Which manifest media types the client accepts (from its Accept header). */
export type AcceptsMediaType = (mediaType: string) => boolean;

const UPSTREAM_ACCEPT = MANIFEST_TYPES.join(', ');

export interface ManifestOptions {
  maxManifestBytes: number;
  /** Bytes of manifests kept in memory for the hot path. */
  memoryBytes?: number;
  logger: Logger;
  now?: () => number;
}

/**
 * Pull-through manifests (cf. distribution's registry/proxy/proxymanifeststore.go).
 * By digest: immutable, served from the store once verified. By tag: trusted
 * for the upstream's tagTtl, then revalidated with a HEAD (which Docker Hub
 * does not count against pull limits); when the upstream is down the last
 * known tag keeps being served.
 */
export class ProxyManifests {
  private readonly flights = new SingleFlight<ManifestBlob>();
  private readonly tagFlights = new SingleFlight<TagRecord>();
  private readonly memory: LRUCache<string, ManifestBlob>;
  private readonly now: () => number;
  private readonly logger: Logger;

  constructor(
    private readonly blobs: BlobStore,
    private readonly records: RecordStore,
    private readonly opts: ManifestOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.logger = opts.logger;
    this.memory = new LRUCache<string, ManifestBlob>({
      maxSize: opts.memoryBytes ?? 64 * 1024 * 1024,
      sizeCalculation: (m) => m.bytes.length + 200,
    });
  }

  /** The manifest a client asked for, negotiated against what it accepts. */
  async get(ref: RepoRef, reference: string, accepts: AcceptsMediaType): Promise<ManifestBlob> {
    const manifest = isDigest(reference) ? await this.byDigest(ref, reference) : await this.byTag(ref, reference);
    return this.negotiate(ref, manifest, accepts, isDigest(reference));
  }

  /** A manifest by digest in this repository, without negotiation. */
  async byDigest(ref: RepoRef, digest: string): Promise<ManifestBlob> {
    const up = ref.entry.upstream.name;
    // Content is shared, but a repository serves only what it is known to hold.
    const mediaType = await this.records.getManifestLink(up, ref.repo, digest);
    if (mediaType !== undefined) {
      const cached = this.memory.get(digest) ?? (await this.load(digest, mediaType));
      if (cached) {
        cacheLookups.inc({ kind: 'manifest', result: 'hit' });
        return cached;
      }
    }
    cacheLookups.inc({ kind: 'manifest', result: 'miss' });
    return this.flights.do(`${up}\0${ref.repo}\0${digest}`, () => this.fetch(ref, digest));
  }

  /** A manifest by tag: cached while fresh, revalidated after tagTtl, stale when upstream fails. */
  async byTag(ref: RepoRef, tag: string): Promise<ManifestBlob> {
    const up = ref.entry.upstream.name;
    const rec = await this.records.getTag(up, ref.repo, tag);
    if (rec && this.now() - rec.checkedAt < ref.entry.tagTtl) {
      const cached = this.memory.get(rec.digest) ?? (await this.load(rec.digest, rec.mediaType));
      if (cached) {
        cacheLookups.inc({ kind: 'tag', result: 'hit' });
        return cached;
      }
    }
    cacheLookups.inc({ kind: 'tag', result: rec ? 'stale' : 'miss' });
    let fresh: TagRecord;
    try {
      fresh = await this.tagFlights.do(`${up}\0${ref.repo}\0${tag}`, () => this.refreshTag(ref, tag, rec));
    } catch (err) {
      if (rec && isUpstreamOutage(err)) {
        const cached = this.memory.get(rec.digest) ?? (await this.load(rec.digest, rec.mediaType));
        if (cached) {
          this.logger.warn({ upstream: up, repo: ref.repo, tag, err: (err as Error).message }, 'upstream unavailable; serving cached tag');
          return cached;
        }
      }
      throw upstreamFailure(err, `manifest ${ref.clientName}:${tag}`);
    }
    return this.byDigest(ref, fresh.digest);
  }

  private async refreshTag(ref: RepoRef, tag: string, rec: TagRecord | undefined): Promise<TagRecord> {
    const up = ref.entry.upstream;
    const path = `/v2/${ref.repo}/manifests/${tag}`;
    if (rec && this.blobs.has(rec.digest)) {
      // Revalidate with HEAD: cheap, and not counted by Docker Hub's pull limits.
      const res = await up.request({ method: 'HEAD', path, repository: ref.repo, headers: { accept: UPSTREAM_ACCEPT } });
      if (res.status === 200) {
        res.body.resume();
        const digest = headerValue(res, 'docker-content-digest');
        if (digest === rec.digest) {
          const next = { ...rec, checkedAt: this.now() };
          await this.records.putTag(up.name, ref.repo, tag, next);
          return next;
        }
      } else {
        throw upstreamStatusError(res, up.name, `manifest ${tag}`, this.unknown(ref, tag));
      }
    }
    const manifest = await this.fetch(ref, tag);
    const next = { digest: manifest.digest, mediaType: manifest.mediaType, checkedAt: this.now() };
    await this.records.putTag(up.name, ref.repo, tag, next);
    return next;
  }

  /** GETs a manifest from upstream, verifies and stores it. */
  private async fetch(ref: RepoRef, reference: string): Promise<ManifestBlob> {
    const up = ref.entry.upstream;
    let res: UpstreamResponse;
    try {
      res = await up.request({ method: 'GET', path: `/v2/${ref.repo}/manifests/${reference}`, repository: ref.repo, headers: { accept: UPSTREAM_ACCEPT } });
    } catch (err) {
      throw upstreamFailure(err, `manifest ${ref.clientName}@${reference}`);
    }
    if (res.status !== 200) throw upstreamStatusError(res, up.name, `manifest ${reference}`, this.unknown(ref, reference));
    const bytes = await this.readBounded(res, up.name);
    const digest = sha256(bytes);
    const claimed = headerValue(res, 'docker-content-digest');
    if ((isDigest(reference) && digest !== reference) || (claimed !== undefined && isDigest(claimed) && claimed !== digest)) {
      throw new OciError('UPSTREAM_UNAVAILABLE', `upstream ${up.name} served a manifest that does not match its digest`, {
        expected: isDigest(reference) ? reference : claimed,
        actual: digest,
      });
    }
    const mediaType = manifestMediaType(headerValue(res, 'content-type'), bytes);
    await this.blobs.putBuffer(digest, bytes);
    await this.records.putManifestLink(up.name, ref.repo, digest, mediaType);
    const manifest = { digest, mediaType, bytes };
    this.memory.set(digest, manifest);
    return manifest;
  }

  private async readBounded(res: UpstreamResponse, upstream: string): Promise<Buffer> {
    const max = this.opts.maxManifestBytes;
    const declared = Number(headerValue(res, 'content-length') ?? NaN);
    const tooBig = () => new OciError('MANIFEST_INVALID', `upstream ${upstream} served a manifest larger than ${max} bytes`, { limit: max }, 502);
    if (declared > max) {
      res.body.destroy();
      throw tooBig();
    }
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > max) {
        res.body.destroy();
        throw tooBig();
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks, total);
  }

  private async load(digest: string, mediaType: string): Promise<ManifestBlob | undefined> {
    const bytes = await this.blobs.readBuffer(digest);
    if (!bytes) return undefined;
    const manifest = { digest, mediaType, bytes };
    this.memory.set(digest, manifest);
    return manifest;
  }

  /**
   * Never hands an index to a client that does not accept one: like
   * distribution, such clients get the linux/amd64 entry when they accept it.
   */
  private async negotiate(ref: RepoRef, m: ManifestBlob, accepts: AcceptsMediaType, byDigest: boolean): Promise<ManifestBlob> {
    if (accepts(m.mediaType)) return m;
    if (isIndexType(m.mediaType) && !byDigest) {
      const index = JSON.parse(m.bytes.toString('utf8')) as ImageIndex;
      const pick = pickDefaultPlatform(index.manifests ?? [], accepts);
      if (pick) return this.byDigest(ref, pick.digest);
    }
    throw new OciError('MANIFEST_UNKNOWN', `manifest is ${m.mediaType}, which the request's Accept header does not allow`, {
      mediaType: m.mediaType,
      digest: m.digest,
    });
  }

  private unknown(ref: RepoRef, reference: string): OciError {
    return new OciError('MANIFEST_UNKNOWN', `manifest ${reference} is not known in ${ref.clientName}`, { name: ref.clientName, reference });
  }
}

function pickDefaultPlatform(entries: Descriptor[], accepts: AcceptsMediaType): Descriptor | undefined {
  return entries.find((d) => d.platform?.os === 'linux' && d.platform.architecture === 'amd64' && accepts(d.mediaType));
}

/** The upstream's Content-Type, unless it is generic; then the manifest's own `mediaType` or its shape. */
export function manifestMediaType(contentType: string | undefined, bytes: Buffer): string {
  const ct = contentType?.split(';')[0]?.trim().toLowerCase();
  if (ct && MANIFEST_TYPES.includes(ct)) return ct;
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown; manifests?: unknown; config?: unknown };
    if (typeof doc.mediaType === 'string' && doc.mediaType) return doc.mediaType;
    if (Array.isArray(doc.manifests)) return OCI_INDEX;
    if (doc.config) return OCI_MANIFEST;
  } catch {
    /* not JSON: fall through to the declared type */
  }
  return ct || OCI_MANIFEST;
}

