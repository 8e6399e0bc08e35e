import { OciError } from '../oci/errors.js';
import { isRepositoryName } from '../oci/names.js';
import type { UpstreamRequest, UpstreamResponse } from '../upstream/types.js';

/** What the pull-through core needs of an upstream client. */
export interface Upstream {
  readonly name: string;
  request(req: UpstreamRequest): Promise<UpstreamResponse>;
}

export interface UpstreamEntry {
  upstream: Upstream;
  /** How long a tag is trusted before it is revalidated, in ms. */
  tagTtl: number;
  /** Docker Hub puts one-component names under `library/`. */
  dockerHub: boolean;
}

/** A repository on a chosen upstream, and the name the client used for it. */
export interface RepoRef {
  entry: UpstreamEntry;
  /** Name on the upstream, e.g. library/nginx. */
  repo: string;
  /** Name as the client wrote it after /v2/, e.g. docker.io/nginx; used to build Link headers. */
  clientName: string;
}

const DOCKER_HUB_HOSTS = new Set(['docker.io', 'registry-1.docker.io', 'index.docker.io', 'registry.hub.docker.com']);

export function isDockerHub(name: string, url: string): boolean {
  return DOCKER_HUB_HOSTS.has(name) || DOCKER_HUB_HOSTS.has(new URL(url).host);
}

/**
 * Picks the upstream for a request: containerd's `?ns=` first, then a first
 * path component naming an upstream, then the default. Only configured
 * upstreams are ever contacted.
 */
export class UpstreamRouter {
  private readonly byName = new Map<string, UpstreamEntry>();

  constructor(
    entries: readonly UpstreamEntry[],
    private readonly defaultName: string,
  ) {
    for (const e of entries) this.byName.set(e.upstream.name, e);
    // containerd sends the host it was asked for; Docker Hub is asked for under several names.
    const hub = entries.find((e) => e.dockerHub);
    if (hub) for (const alias of DOCKER_HUB_HOSTS) if (!this.byName.has(alias)) this.byName.set(alias, hub);
    if (!this.byName.has(defaultName)) throw new Error(`default upstream ${defaultName} is not configured`);
  }

  resolve(clientName: string, ns: string | undefined): RepoRef {
    let entry: UpstreamEntry | undefined;
    let repo = clientName;
    if (ns !== undefined) {
      entry = this.byName.get(ns);
      if (!entry) throw new OciError('NAME_UNKNOWN', `no upstream is configured for registry ${ns}`, { ns });
    } else {
      const slash = clientName.indexOf('/');
      const first = slash > 0 ? clientName.slice(0, slash) : '';
      const named = first ? this.byName.get(first) : undefined;
      if (named) {
        entry = named;
        repo = clientName.slice(slash + 1);
      } else {
        entry = this.byName.get(this.defaultName) as UpstreamEntry;
      }
    }
    if (!isRepositoryName(repo)) throw new OciError('NAME_INVALID', `invalid repository name ${JSON.stringify(repo)}`);
    if (entry.dockerHub && !repo.includes('/')) repo = `library/${repo}`;
    return { entry, repo, clientName };
  }
}
