import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

// Only sha256 is accepted: it is what every registry in the field produces, and
// refusing others keeps a digest's meaning unambiguous for the store.
const SHA256_RE = /^sha256:[a-f0-9]{64}$/;
const ANY_DIGEST_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export function isDigest(value: string): boolean {
  return SHA256_RE.test(value);
}

/** Digest-shaped (algorithm:encoded) even if the algorithm is unsupported. */
export function looksLikeDigest(value: string): boolean {
  return ANY_DIGEST_RE.test(value);
}

export function hexOf(digest: string): string {
  return digest.slice('sha256:'.length);
}

export function sha256(data: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

export class DigestMismatchError extends Error {
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`content digest ${actual} does not match ${expected}`);
    this.name = 'DigestMismatchError';
  }
}

/**
 * Pass-through stream that hashes what flows and fails at the end when the
 * bytes do not hash to `expected`, so a consumer never sees a clean finish on
 * corrupt content.
 */
export class DigestVerifier extends Transform {
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;
  constructor(readonly expected: string) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    const actual = 'sha256:' + this.hash.digest('hex');
    cb(actual === this.expected ? null : new DigestMismatchError(this.expected, actual));
  }
}
