import type { Readable } from 'node:stream';
import type { ManifestBlob } from '../oci/types.js';
import { ImageError } from './errors.js';

/** Where a source image comes from: a registry repository or an OCI image layout on disk. */
export interface ImageSource {
  /** Manifest bytes + media type by tag or digest (an implementation verifies a digest reference). */
  getManifest(reference: string): Promise<ManifestBlob>;
  /** Blob content stream by digest; the stream errors at its end when the bytes do not match the digest. */
  openBlob(digest: string): Promise<Readable>;
  /** How to name the source in annotations, e.g. "127.0.0.1:5001/app" or "oci-layout:/path". */
  readonly name: string;
}

/** Largest manifest or config read into memory; real ones are a few KiB. */
export const MAX_DOCUMENT_BYTES = 4 * 1024 * 1024;

/** Reads a small document stream fully, refusing one larger than `limit`. */
export async function readSmall(stream: Readable, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limit) {
      stream.destroy();
      throw new ImageError('LIMIT_EXCEEDED', `${what} is larger than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}
