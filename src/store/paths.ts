import { join } from 'node:path';
import { hexOf } from '../oci/digest.js';

/**
 * On-disk layout of the cache. Content is global and addressed by digest;
 * what a repository is known to hold is recorded per upstream and repository
 * (names are grammar-checked before they reach here, so they cannot escape).
 *
 *   blobs/sha256/ab/<hex>                       content (blobs and manifests)
 *   tmp/                                        in-progress writes, emptied at start
 *   repos/<upstream>/<repo>/_tags/<tag>         tag record (JSON)
 *   repos/<upstream>/<repo>/_manifests/<hex>    manifest link: its media type
 *   repos/<upstream>/<repo>/_blobs/<hex>        blob link (empty file)
 *   repos/<upstream>/<repo>/_lists/<name>.json  cached listings (tags, referrers)
 */
export class StorePaths {
  constructor(readonly root: string) {}

  get blobsDir(): string {
    return join(this.root, 'blobs', 'sha256');
  }
  get tmpDir(): string {
    return join(this.root, 'tmp');
  }
  blob(digest: string): string {
    const hex = hexOf(digest);
    return join(this.root, 'blobs', 'sha256', hex.slice(0, 2), hex);
  }
  repo(upstream: string, repo: string): string {
    return join(this.root, 'repos', upstream, repo);
  }
}
