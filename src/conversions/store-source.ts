import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { StorePaths } from '../store/paths.js';
import type { ImageSource } from '../image/source.js';
import type { ManifestBlob } from '../oci/types.js';

/**
 * An image read straight from the blob store's files. The conversion worker
 * uses it after the main thread made sure every blob is cached (and pinned):
 * store files are verified on write and immutable, so reading them needs no
 * coordination with the server.
 */
export class StoreImageSource implements ImageSource {
  private readonly paths: StorePaths;

  constructor(
    root: string,
    private readonly manifest: ManifestBlob,
    readonly name: string,
  ) {
    this.paths = new StorePaths(root);
  }

  async getManifest(reference: string): Promise<ManifestBlob> {
    if (reference === this.manifest.digest || reference === '') return this.manifest;
    const bytes = await readFile(this.paths.blob(reference));
    return { digest: reference, mediaType: this.manifest.mediaType, bytes };
  }

  async openBlob(digest: string): Promise<Readable> {
    return createReadStream(this.paths.blob(digest), { highWaterMark: 1 << 20 });
  }
}
