import { isDigest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { OCI_INDEX } from '../oci/mediatypes.js';
import type { Descriptor, ImageIndex } from '../oci/types.js';
import type { Logger } from '../ops/log.js';
import type { RecordStore } from '../store/records.js';
import { isUpstreamOutage } from './errors.js';
import type { ProxyManifests } from './manifests.js';
import { SingleFlight } from '../util/singleflight.js';
import type { RepoRef } from './upstreams.js';

/**
 * Referrers of a manifest (distribution-spec end-12). Asks the upstream's
 * referrers API, falls back to the `sha256-<hex>` tag schema for upstreams
 * without it, and answers an empty index rather than 404.
 */
export class ProxyReferrers {
  private readonly flights = new SingleFlight<Descriptor[]>();

  constructor(
    private readonly manifests: ProxyManifests,
    private readonly records: RecordStore,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  async list(ref: RepoRef, digest: string, artifactType?: string): Promise<ImageIndex> {
    if (!isDigest(digest)) throw new OciError('DIGEST_INVALID', `invalid digest ${JSON.stringify(digest)}`);
    const all = await this.all(ref, digest);
    const manifests = artifactType === undefined ? all : all.filter((d) => d.artifactType === artifactType);
    return { schemaVersion: 2, mediaType: OCI_INDEX, manifests };
  }

  private async all(ref: RepoRef, digest: string): Promise<Descriptor[]> {
    const up = ref.entry.upstream.name;
    const key = `referrers-${digest.slice(7)}`;
    const rec = await this.records.getList<Descriptor[]>(up, ref.repo, key);
    if (rec && this.now() - rec.checkedAt < ref.entry.tagTtl) return rec.value;
    try {
      return await this.flights.do(`${up}\0${ref.repo}\0${digest}`, async () => {
        const list = await this.fetch(ref, digest);
        await this.records.putList(up, ref.repo, key, list, this.now());
        return list;
      });
    } catch (err) {
      if (!isUpstreamOutage(err)) throw err;
      this.logger.warn({ upstream: up, repo: ref.repo, digest, err: (err as Error).message }, 'upstream unavailable; serving cached referrers');
      return rec?.value ?? [];
    }
  }

  private async fetch(ref: RepoRef, digest: string): Promise<Descriptor[]> {
    const up = ref.entry.upstream;
    const res = await up.request({ method: 'GET', path: `/v2/${ref.repo}/referrers/${digest}`, repository: ref.repo, headers: { accept: OCI_INDEX } });
    if (res.status === 200) {
      const chunks: Buffer[] = [];
      for await (const c of res.body as AsyncIterable<Buffer>) chunks.push(c);
      try {
        const index = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ImageIndex;
        if (Array.isArray(index.manifests)) return index.manifests;
      } catch {
        /* not an index: fall back to the tag schema */
      }
    } else {
      res.body.resume();
      if (res.status >= 500 || res.status === 429) throw new OciError('UPSTREAM_UNAVAILABLE', `upstream ${up.name} answered ${res.status} for referrers`);
    }
    // Tag schema fallback (distribution-spec "Referrers Tag Schema").
    try {
      const m = await this.manifests.byTag(ref, `sha256-${digest.slice(7)}`);
      const index = JSON.parse(m.bytes.toString('utf8')) as ImageIndex;
      return Array.isArray(index.manifests) ? index.manifests : [];
    } catch (err) {
      if (err instanceof OciError && (err.code === 'MANIFEST_UNKNOWN' || err.code === 'NAME_UNKNOWN')) return [];
      throw err;
    }
  }
}
