import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { DigestVerifier, hexOf, isDigest, sha256 } from '../oci/digest.js';
import { OCI_INDEX } from '../oci/mediatypes.js';
import type { Descriptor, ImageIndex, ManifestBlob } from '../oci/types.js';
import { ImageError } from './errors.js';
import { MAX_DOCUMENT_BYTES, type ImageSource } from './source.js';

const REF_NAME = 'org.opencontainers.image.ref.name';

/**
 * An OCI image layout directory (index.json + blobs/sha256/…). A reference is a digest, a tag recorded as
 * `org.opencontainers.image.ref.name` in index.json, or "" (the single image, or index.json itself when the
 * layout holds several).
 */
export class OciLayoutSource implements ImageSource {
  readonly name: string;

  constructor(readonly dir: string) {
    this.name = `oci-layout:${dir}`;
  }

  private async index(): Promise<{ bytes: Buffer; index: ImageIndex }> {
    let bytes: Buffer;
    try {
      bytes = await readFile(join(this.dir, 'index.json'));
    } catch (err) {
      throw new ImageError('MANIFEST_UNKNOWN', `${this.dir} is not an OCI image layout (no index.json)`, { cause: err });
    }
    try {
      const index = JSON.parse(bytes.toString('utf8')) as ImageIndex;
      if (!Array.isArray(index.manifests)) throw new Error('no manifests array');
      return { bytes, index };
    } catch (err) {
      throw new ImageError('MANIFEST_INVALID', `${this.dir}/index.json is not a valid image index`, { cause: err });
    }
  }

  private blobPath(digest: string): string {
    // The digest is the only input that becomes a path: checking its shape keeps it inside blobs/.
    if (!isDigest(digest)) throw new ImageError('BLOB_UNKNOWN', `unsupported or malformed digest ${JSON.stringify(digest)}`);
    return join(this.dir, 'blobs', 'sha256', hexOf(digest));
  }

  async getManifest(reference: string): Promise<ManifestBlob> {
    const { bytes, index } = await this.index();
    let descriptor: Descriptor | undefined;
    if (isDigest(reference)) {
      descriptor = index.manifests.find((d) => d.digest === reference);
      return this.readManifest(reference, descriptor?.mediaType);
    }
    if (reference !== '') descriptor = index.manifests.find((d) => d.annotations?.[REF_NAME] === reference);
    if (!descriptor && (reference === '' || reference === 'latest') && index.manifests.length === 1) {
      descriptor = index.manifests[0];
    }
    if (!descriptor && reference === '') {
      // Several images and no tag: index.json is itself an OCI index to choose from.
      return { digest: sha256(bytes), mediaType: OCI_INDEX, bytes };
    }
    if (!descriptor) throw new ImageError('MANIFEST_UNKNOWN', `no image tagged ${JSON.stringify(reference)} in ${this.dir}`);
    return this.readManifest(descriptor.digest, descriptor.mediaType);
  }

  private async readManifest(digest: string, mediaType: string | undefined): Promise<ManifestBlob> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.blobPath(digest));
    } catch (err) {
      if (err instanceof ImageError) throw err;
      throw new ImageError('MANIFEST_UNKNOWN', `manifest ${digest} is not in ${this.dir}`, { cause: err });
    }
    if (bytes.length > MAX_DOCUMENT_BYTES) throw new ImageError('LIMIT_EXCEEDED', `manifest ${digest} is too large`);
    const actual = sha256(bytes);
    if (actual !== digest) throw new ImageError('SOURCE_FAILED', `manifest ${digest} in ${this.dir} hashes to ${actual}`);
    return { digest, mediaType: mediaType ?? mediaTypeOf(bytes), bytes };
  }

  async openBlob(digest: string): Promise<Readable> {
    const path = this.blobPath(digest);
    // 1 MiB reads: a layer is read start to end, and every chunk costs a trip through the stream chain.
    const file = createReadStream(path, { highWaterMark: 1024 * 1024 });
    await new Promise<void>((resolve, reject) => {
      file.once('open', () => resolve());
      file.once('error', (err) => reject(new ImageError('BLOB_UNKNOWN', `blob ${digest} is not in ${this.dir}`, { cause: err })));
    });
    const verifier = new DigestVerifier(digest);
    file.on('error', (err) => verifier.destroy(err));
    return file.pipe(verifier);
  }
}

/** The `mediaType` a manifest declares about itself, for stores that do not record it alongside. */
export function mediaTypeOf(bytes: Buffer): string {
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown; manifests?: unknown };
    if (typeof parsed.mediaType === 'string') return parsed.mediaType;
    return Array.isArray(parsed.manifests) ? OCI_INDEX : 'application/vnd.oci.image.manifest.v1+json';
  } catch {
    throw new ImageError('MANIFEST_INVALID', 'manifest is not JSON');
  }
}
