import { OciError } from '../oci/errors.js';
import { headerValue } from '../upstream/types.js';
import { cacheLookups } from '../ops/metrics.js';
import type { Logger } from '../ops/log.js';
import type { RecordStore } from '../store/records.js';
import { isUpstreamOutage, upstreamFailure, upstreamStatusError } from './errors.js';
import { SingleFlight } from '../util/singleflight.js';
import type { RepoRef } from './upstreams.js';

export interface TagPage {
  name: string;
  tags: string[];
  /** Parameters of the next page, when more tags remain. */
  next?: { n: number; last: string };
}

// Bounds how much of a huge upstream listing one request may pull.
const MAX_PAGES = 100;

/**
 * Tag listings (cf. distribution's registry/proxy/proxytagservice.go). The
 * whole upstream list is cached for the upstream's tagTtl and paginated here,
 * so `n`/`last` behave per spec whatever the upstream does, and the list is
 * still served when the upstream is down.
 */
export class ProxyTags {
  private readonly flights = new SingleFlight<string[]>();

  constructor(
    private readonly records: RecordStore,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  async list(ref: RepoRef, n: number | undefined, last: string | undefined): Promise<TagPage> {
    const all = await this.all(ref);
    let tags = last === undefined ? all : all.filter((t) => t > last);
    let next: TagPage['next'];
    if (n !== undefined) {
      if (tags.length > n && n > 0) next = { n, last: tags[n - 1] as string };
      tags = tags.slice(0, n);
    }
    return { name: ref.clientName, tags, ...(next ? { next } : {}) };
  }

  private async all(ref: RepoRef): Promise<string[]> {
    const up = ref.entry.upstream.name;
    const rec = await this.records.getList<string[]>(up, ref.repo, 'tags');
    if (rec && this.now() - rec.checkedAt < ref.entry.tagTtl) {
      cacheLookups.inc({ kind: 'tags_list', result: 'hit' });
      return rec.value;
    }
    cacheLookups.inc({ kind: 'tags_list', result: rec ? 'stale' : 'miss' });
    try {
      return await this.flights.do(`${up}\0${ref.repo}`, async () => {
        const tags = await this.fetchAll(ref);
        await this.records.putList(up, ref.repo, 'tags', tags, this.now());
        return tags;
      });
    } catch (err) {
      if (rec && isUpstreamOutage(err)) {
        this.logger.warn({ upstream: up, repo: ref.repo, err: (err as Error).message }, 'upstream unavailable; serving cached tag list');
        return rec.value;
      }
      throw upstreamFailure(err, `tag list of ${ref.clientName}`);
    }
  }

  private async fetchAll(ref: RepoRef): Promise<string[]> {
    const up = ref.entry.upstream;
    const tags = new Set<string>();
    let path: string | undefined = `/v2/${ref.repo}/tags/list`;
    for (let page = 0; path !== undefined && page < MAX_PAGES; page++) {
      const res = await up.request({ method: 'GET', path, repository: ref.repo });
      if (res.status !== 200) {
        throw upstreamStatusError(res, up.name, 'tag list', new OciError('NAME_UNKNOWN', `repository ${ref.clientName} is not known`, { name: ref.clientName }));
      }
      const chunks: Buffer[] = [];
      for await (const c of res.body as AsyncIterable<Buffer>) chunks.push(c);
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { tags?: string[] | null };
      for (const t of body.tags ?? []) tags.add(t);
      path = nextPath(headerValue(res, 'link'));
    }
    return [...tags].sort();
  }
}

/** The path of an RFC 8288 `rel="next"` link, kept on the same upstream. */
export function nextPath(link: string | undefined): string | undefined {
  if (!link) return undefined;
  const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(link);
  if (!m) return undefined;
  const url = new URL(m[1] as string, 'http://upstream.invalid');
  return url.pathname.startsWith('/v2/') ? url.pathname + url.search : undefined;
}
