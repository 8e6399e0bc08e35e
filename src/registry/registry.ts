import type { ImageIndex, ManifestBlob } from '../oci/types.js';
import type { Logger } from '../ops/log.js';
import type { BlobStore } from '../store/blobs.js';
import type { RecordStore } from '../store/records.js';
import { ProxyBlobs, type BlobSource } from './blobs.js';
import { ProxyManifests, type AcceptsMediaType } from './manifests.js';
import { ProxyReferrers } from './referrers.js';
import { ProxyTags, type TagPage } from './tags.js';
import type { RepoRef, UpstreamRouter } from './upstreams.js';

/**
 * What the HTTP layer needs of a registry. The pull-through core implements
 * it; Box exposure implements it again by wrapping the core, the way
 * distribution's proxy wraps its storage.
 */
export interface RegistryService<Ref> {
  resolve(name: string, ns: string | undefined): Ref;
  manifest(ref: Ref, reference: string, accepts: AcceptsMediaType): Promise<ManifestBlob>;
  blob(ref: Ref, digest: string): Promise<BlobSource>;
  blobSize(ref: Ref, digest: string): Promise<number | undefined>;
  tags(ref: Ref, n: number | undefined, last: string | undefined): Promise<TagPage>;
  referrers(ref: Ref, digest: string, artifactType: string | undefined): Promise<ImageIndex>;
}

export interface RegistryOptions {
  maxManifestBytes: number;
  logger: Logger;
  now?: () => number;
}

/** The pull-through core: routing plus one service per proxied concern. */
export class PullThroughRegistry implements RegistryService<RepoRef> {
  readonly manifests: ProxyManifests;
  readonly blobs: ProxyBlobs;
  readonly tagList: ProxyTags;
  readonly referrerList: ProxyReferrers;

  constructor(
    readonly router: UpstreamRouter,
    store: BlobStore,
    records: RecordStore,
    opts: RegistryOptions,
  ) {
    const now = opts.now ?? Date.now;
    this.manifests = new ProxyManifests(store, records, { maxManifestBytes: opts.maxManifestBytes, logger: opts.logger, now });
    this.blobs = new ProxyBlobs(store, records, opts.logger);
    this.tagList = new ProxyTags(records, opts.logger, now);
    this.referrerList = new ProxyReferrers(this.manifests, records, opts.logger, now);
  }

  resolve(name: string, ns: string | undefined): RepoRef {
    return this.router.resolve(name, ns);
  }
  manifest(ref: RepoRef, reference: string, accepts: AcceptsMediaType): Promise<ManifestBlob> {
    return this.manifests.get(ref, reference, accepts);
  }
  blob(ref: RepoRef, digest: string): Promise<BlobSource> {
    return this.blobs.get(ref, digest);
  }
  blobSize(ref: RepoRef, digest: string): Promise<number | undefined> {
    return this.blobs.head(ref, digest);
  }
  tags(ref: RepoRef, n: number | undefined, last: string | undefined): Promise<TagPage> {
    return this.tagList.list(ref, n, last);
  }
  referrers(ref: RepoRef, digest: string, artifactType: string | undefined): Promise<ImageIndex> {
    return this.referrerList.list(ref, digest, artifactType);
  }
}
