import type { Logger } from '../ops/log.js';
import type { BlobStore } from '../store/blobs.js';
import type { RecordStore } from '../store/records.js';
import { ProxyBlobs } from './blobs.js';
import { ProxyManifests } from './manifests.js';
import { ProxyReferrers } from './referrers.js';
import { ProxyTags } from './tags.js';
import type { UpstreamRouter } from './upstreams.js';

export interface RegistryOptions {
  maxManifestBytes: number;
  logger: Logger;
  now?: () => number;
}

/** The pull-through core: routing plus one service per proxied concern. */
export class PullThroughRegistry {
  readonly manifests: ProxyManifests;
  readonly blobs: ProxyBlobs;
  readonly tags: ProxyTags;
  readonly referrers: ProxyReferrers;

  constructor(
    readonly router: UpstreamRouter,
    store: BlobStore,
    records: RecordStore,
    opts: RegistryOptions,
  ) {
    const now = opts.now ?? Date.now;
    this.manifests = new ProxyManifests(store, records, { maxManifestBytes: opts.maxManifestBytes, logger: opts.logger, now });
    this.blobs = new ProxyBlobs(store, records, opts.logger);
    this.tags = new ProxyTags(records, opts.logger, now);
    this.referrers = new ProxyReferrers(this.manifests, records, opts.logger, now);
  }
}
