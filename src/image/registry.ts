import type { Readable } from 'node:stream';
import { DigestVerifier, isDigest, sha256 } from '../oci/digest.js';
import { MANIFEST_TYPES } from '../oci/mediatypes.js';
import type { ManifestBlob } from '../oci/types.js';
import type { UpstreamRequest, UpstreamResponse } from '../upstream/types.js';
import { ImageError } from './errors.js';
import { MAX_DOCUMENT_BYTES, readSmall, type ImageSource } from './source.js';
import { mediaTypeOf } from './oci-layout.js';

export type UpstreamRequester = (req: UpstreamRequest) => Promise<UpstreamResponse>;

/** A repository on a registry, reached through an upstream request function (UpstreamClient.request). */
export class RegistrySource implements ImageSource {
  constructor(
    private readonly request: UpstreamRequester,
    readonly repository: string,
    /** e.g. "127.0.0.1:5001/app"; defaults to the repository name. */
    readonly name: string = repository,
  ) {}

  async getManifest(reference: string): Promise<ManifestBlob> {
    const res = await this.request({
      method: 'GET',
      path: `/v2/${this.repository}/manifests/${encodeURIComponent(reference)}`,
      repository: this.repository,
      headers: { accept: MANIFEST_TYPES.join(', ') },
    });
    if (res.status !== 200) {
      discard(res.body);
      const code = res.status === 404 ? 'MANIFEST_UNKNOWN' : 'SOURCE_FAILED';
      throw new ImageError(code, `${this.name}:${reference}: registry answered ${res.status} for the manifest`);
    }
    const bytes = await readSmall(res.body, MAX_DOCUMENT_BYTES, `manifest ${this.name}:${reference}`);
    const digest = sha256(bytes);
    if (isDigest(reference) && digest !== reference) {
      throw new ImageError('SOURCE_FAILED', `manifest ${reference} from ${this.name} hashes to ${digest}`);
    }
    const header = res.headers['content-type'];
    const contentType = (Array.isArray(header) ? header[0] : header)?.split(';')[0]?.trim();
    const mediaType = contentType && MANIFEST_TYPES.includes(contentType) ? contentType : mediaTypeOf(bytes);
    return { digest, mediaType, bytes };
  }

  async openBlob(digest: string): Promise<Readable> {
    if (!isDigest(digest)) throw new ImageError('BLOB_UNKNOWN', `unsupported or malformed digest ${JSON.stringify(digest)}`);
    const res = await this.request({
      method: 'GET',
      path: `/v2/${this.repository}/blobs/${digest}`,
      repository: this.repository,
    });
    if (res.status !== 200) {
      discard(res.body);
      const code = res.status === 404 ? 'BLOB_UNKNOWN' : 'SOURCE_FAILED';
      throw new ImageError(code, `${this.name}@${digest}: registry answered ${res.status} for the blob`);
    }
    const verifier = new DigestVerifier(digest);
    res.body.on('error', (err) => verifier.destroy(err));
    return res.body.pipe(verifier);
  }
}

/** Drops an unread body; some clients report destroying one as an error, which nobody here needs. */
function discard(body: Readable): void {
  body.on('error', () => undefined);
  body.destroy();
}
