// Signing a manifest in both formats at once, and verifying whatever a registry
// holds for it. Signing produces bytes only; the caller stores them once
// (ECDSA signatures are randomized, so re-signing would change every digest).
import { isDigest, sha256 } from '../oci/digest.js';
import { OCI_CONFIG } from '../oci/mediatypes.js';
import type { Descriptor, ManifestBlob } from '../oci/types.js';
import { BUNDLE_V03_MEDIA_TYPE, buildBundleReferrerManifest, inTotoStatement, signBundle, verifyBundleReferrer } from './bundle.js';
import type { BlobContent, BlobGetter, VerifyResult } from './common.js';
import { buildCosignSignatureManifest, cosignPayload, cosignSignatureTag, signCosign, verifyCosign } from './cosign.js';
import type { SigningKey, VerificationKey } from './keys.js';

export type SignatureFormat = 'cosign' | 'bundle';

export interface SignRequest {
  /** `<host>/<repository>` the manifest is served under; recorded in both signatures. */
  reference: string;
  /** The signed manifest (a Box manifest): its media type, digest and size. */
  descriptor: Descriptor;
  /** Optional RFC 3339 creation time for the bundle referrer's annotation; omitted keeps the output deterministic. */
  created?: string;
}

export interface ManifestSignatures {
  /** Cosign simple signing: store `manifest` under `tag` in every repository the signed manifest is served from. */
  cosign: { tag: string; manifest: ManifestBlob; descriptor: Descriptor; blobs: BlobContent[] };
  /** Sigstore bundle referrer: store `manifest` (by digest) and list `descriptor` in the subject's referrers. */
  bundle: { manifest: ManifestBlob; descriptor: Descriptor; blobs: BlobContent[] };
}

/** Both signatures for one manifest: everything the registry must store, as bytes with digests. */
export async function signManifest(key: SigningKey, request: SignRequest): Promise<ManifestSignatures> {
  const { reference, descriptor } = request;
  if (!isDigest(descriptor.digest)) throw new Error(`not a sha256 digest: ${descriptor.digest}`);

  const payload = cosignPayload(reference, descriptor.digest);
  const cosign = buildCosignSignatureManifest(payload, await signCosign(key, payload));

  const bundleBytes = await signBundle(key, inTotoStatement(reference, descriptor.digest));
  const bundle = buildBundleReferrerManifest(descriptor, bundleBytes, request.created === undefined ? {} : { created: request.created });

  return {
    cosign: {
      tag: cosignSignatureTag(descriptor.digest),
      manifest: cosign.manifest,
      // The .sig manifest has no artifactType, so a referrers listing reports its config type.
      descriptor: { mediaType: cosign.manifest.mediaType, digest: cosign.manifest.digest, size: cosign.manifest.bytes.length, artifactType: OCI_CONFIG },
      blobs: cosign.blobs,
    },
    bundle: { manifest: bundle.manifest, descriptor: bundle.descriptor, blobs: bundle.blobs },
  };
}

/** Read access to the registry (one repository) holding the signed manifest. */
export interface SignatureSource {
  /** Manifest bytes under `tag`; undefined when the tag does not exist. */
  getManifestByTag(tag: string): Promise<Buffer | undefined>;
  /** Manifests the referrers API lists for `digest`; [] when none or unsupported. */
  getReferrers(digest: string): Promise<Descriptor[]>;
  /** Manifest bytes by digest; undefined when absent. */
  getManifest(digest: string): Promise<Buffer | undefined>;
  getBlob: BlobGetter;
}

export interface VerifyManifestOptions {
  /** Digest of the manifest whose signatures are checked (the resolved Box digest). */
  digest: string;
  /** The manifest's bytes, when the caller has them: checked against `digest`. */
  manifestBytes?: Buffer;
  publicKeys: readonly VerificationKey[];
  source: SignatureSource;
  /** Formats that must verify. Default: at least one format verifies. */
  require?: readonly SignatureFormat[];
}

export interface SignatureVerification {
  ok: boolean;
  /** Formats whose signature verified. */
  verified: SignatureFormat[];
  /** Why each format that did not verify failed ("cosign: …", "bundle: …"). */
  reasons: string[];
  /** Fingerprints of the keys that made the verified signatures. */
  keyFingerprints: string[];
}

type FormatOutcome = { status: 'verified'; keyFingerprint: string } | { status: 'missing' | 'invalid'; reason: string };

function outcome(result: VerifyResult): FormatOutcome {
  return result.ok ? { status: 'verified', keyFingerprint: result.keyFingerprint } : { status: 'invalid', reason: result.reason };
}

async function checkCosign(options: VerifyManifestOptions): Promise<FormatOutcome> {
  const tag = cosignSignatureTag(options.digest);
  const manifest = await options.source.getManifestByTag(tag);
  if (!manifest) return { status: 'missing', reason: `no signature under tag ${tag}` };
  return outcome(await verifyCosign(manifest, options.source.getBlob, options.publicKeys, options.digest));
}

async function checkBundle(options: VerifyManifestOptions): Promise<FormatOutcome> {
  const referrers = (await options.source.getReferrers(options.digest)).filter((d) => d.artifactType === BUNDLE_V03_MEDIA_TYPE);
  if (referrers.length === 0) return { status: 'missing', reason: 'no sigstore bundle referrer' };
  const reasons: string[] = [];
  // Several bundles may exist (e.g. after key rotation); one good one is enough.
  for (const referrer of referrers) {
    const bytes = await options.source.getManifest(referrer.digest);
    if (!bytes) {
      reasons.push(`referrer ${referrer.digest} is missing`);
      continue;
    }
    if (sha256(bytes) !== referrer.digest) {
      reasons.push(`referrer ${referrer.digest} content does not match its digest`);
      continue;
    }
    const result = await verifyBundleReferrer(bytes, options.source.getBlob, options.publicKeys, options.digest);
    if (result.ok) return outcome(result);
    reasons.push(result.reason);
  }
  return { status: 'invalid', reason: reasons.join('; ') };
}

/**
 * Checks every signature format present for a manifest. `ok` requires at least
 * one verified format, every `require`d format verified, and no format present
 * but invalid: a tampered signature fails verification even when the other
 * format is intact.
 */
export async function verifyManifestSignatures(options: VerifyManifestOptions): Promise<SignatureVerification> {
  if (!isDigest(options.digest)) {
    return { ok: false, verified: [], reasons: [`not a sha256 digest: ${options.digest}`], keyFingerprints: [] };
  }
  if (options.manifestBytes && sha256(options.manifestBytes) !== options.digest) {
    return { ok: false, verified: [], reasons: [`manifest content does not match ${options.digest}`], keyFingerprints: [] };
  }
  if (options.publicKeys.length === 0) {
    return { ok: false, verified: [], reasons: ['no trusted public keys'], keyFingerprints: [] };
  }
  const outcomes: Array<[SignatureFormat, FormatOutcome]> = [
    ['cosign', await checkCosign(options)],
    ['bundle', await checkBundle(options)],
  ];
  const verified: SignatureFormat[] = [];
  const reasons: string[] = [];
  const keyFingerprints: string[] = [];
  let invalid = false;
  for (const [format, result] of outcomes) {
    if (result.status === 'verified') {
      verified.push(format);
      if (!keyFingerprints.includes(result.keyFingerprint)) keyFingerprints.push(result.keyFingerprint);
    } else {
      if (result.status === 'invalid') invalid = true;
      reasons.push(`${format}: ${result.reason}`);
    }
  }
  const requiredMissing = (options.require ?? []).filter((format) => !verified.includes(format));
  const ok = verified.length > 0 && !invalid && requiredMissing.length === 0;
  if (verified.length === 0 && !invalid) reasons.unshift('manifest is not signed');
  return { ok, verified, reasons, keyFingerprints };
}
