// Shapes and helpers shared by the signature formats: what the registry stores and how verifiers read it back.
import { sha256, isDigest } from '../oci/digest.js';
import type { Descriptor } from '../oci/types.js';

/** A blob the registry must store, with the media type it is referenced under. */
export interface BlobContent {
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

/** Fetches a blob by digest from wherever the signature was found; undefined when absent. */
export type BlobGetter = (digest: string) => Promise<Buffer | undefined>;

export type VerifyResult = { ok: true; keyFingerprint: string } | { ok: false; reason: string };

export function fail(reason: string): VerifyResult {
  return { ok: false, reason };
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** JSON.parse that reports failure as undefined instead of throwing. */
export function parseJson(bytes: Buffer | string): unknown {
  try {
    return JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Go's encoding/json escapes these even inside strings; matching it keeps our bytes identical to cosign's. */
export function goJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

/** A descriptor read from untrusted JSON, or undefined when malformed. */
export function parseDescriptor(value: unknown): Descriptor | undefined {
  if (!isRecord(value)) return undefined;
  const { mediaType, digest, size } = value;
  if (typeof mediaType !== 'string' || typeof digest !== 'string' || !isDigest(digest)) return undefined;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) return undefined;
  const descriptor: Descriptor = { mediaType, digest, size };
  if (isRecord(value.annotations)) {
    const annotations: Record<string, string> = {};
    for (const [k, v] of Object.entries(value.annotations)) if (typeof v === 'string') annotations[k] = v;
    descriptor.annotations = annotations;
  }
  if (typeof value.artifactType === 'string') descriptor.artifactType = value.artifactType;
  return descriptor;
}

// Signature blobs (payloads, bundles) are a few KiB; refusing large ones keeps a
// hostile registry from making the verifier buffer gigabytes.
export const MAX_SIGNATURE_BLOB = 4 * 1024 * 1024;

/** Fetches the blob a descriptor names and checks its size and digest; a string is the failure reason. */
export async function fetchVerifiedBlob(getBlob: BlobGetter, descriptor: Descriptor, what: string): Promise<Buffer | string> {
  if (descriptor.size > MAX_SIGNATURE_BLOB) return `${what} ${descriptor.digest} is too large (${descriptor.size} bytes)`;
  const bytes = await getBlob(descriptor.digest);
  if (!bytes) return `${what} ${descriptor.digest} is missing`;
  const actual = sha256(bytes);
  if (actual !== descriptor.digest) return `${what} digest mismatch: descriptor says ${descriptor.digest}, content is ${actual}`;
  if (bytes.length !== descriptor.size) return `${what} size mismatch: descriptor says ${descriptor.size}, content is ${bytes.length} bytes`;
  return bytes;
}
