// Sigstore bundle v0.3 as an OCI referrer (what cosign 3 writes and looks for
// first): a DSSE envelope around an in-toto Statement v1 naming the signed
// manifest, signed with the proxy's key; public-key hint, no transparency log.
import { hexOf, isDigest, sha256 } from '../oci/digest.js';
import { OCI_EMPTY, OCI_MANIFEST } from '../oci/mediatypes.js';
import type { Descriptor, ManifestBlob } from '../oci/types.js';
import { fail, fetchVerifiedBlob, isRecord, parseDescriptor, parseJson, type BlobContent, type BlobGetter, type VerifyResult } from './common.js';
import { verifyDer } from './ecdsa.js';
import type { SigningKey, VerificationKey } from './keys.js';

export const BUNDLE_V03_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
// Older spelling of the same version, still accepted by sigstore clients.
const BUNDLE_V03_LEGACY_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle+json;version=0.3';
export const INTOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const INTOTO_STATEMENT_V1 = 'https://in-toto.io/Statement/v1';
export const COSIGN_SIGN_PREDICATE_TYPE = 'https://sigstore.dev/cosign/sign/v1';
export const BUNDLE_CONTENT_ANNOTATION = 'dev.sigstore.bundle.content';
export const BUNDLE_PREDICATE_TYPE_ANNOTATION = 'dev.sigstore.bundle.predicateType';
export const CREATED_ANNOTATION = 'org.opencontainers.image.created';

/** The OCI empty config blob. */
export const EMPTY_CONFIG = Buffer.from('{}');

/** The in-toto Statement v1 cosign signs for an image: one subject, the manifest's sha256, an empty predicate. */
export function inTotoStatement(subjectName: string, manifestDigest: string): Buffer {
  if (!isDigest(manifestDigest)) throw new Error(`not a sha256 digest: ${manifestDigest}`);
  return Buffer.from(
    JSON.stringify({
      _type: INTOTO_STATEMENT_V1,
      subject: [{ name: subjectName, digest: { sha256: hexOf(manifestDigest) } }],
      predicateType: COSIGN_SIGN_PREDICATE_TYPE,
      predicate: {},
    }),
  );
}

/** DSSE v1 pre-authentication encoding: `DSSEv1 <len> <type> <len> <payload>`, lengths in bytes. */
export function dssePae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

/** A bundle v0.3 JSON document: DSSE envelope over `statement`, signed by `key`. */
export async function signBundle(key: SigningKey, statement: Buffer): Promise<Buffer> {
  const signature = await key.sign(dssePae(INTOTO_PAYLOAD_TYPE, statement));
  // Field order and omissions follow the protobuf JSON mapping sigstore clients emit
  // (empty tlogEntries / keyid are left out).
  const bundle = {
    mediaType: BUNDLE_V03_MEDIA_TYPE,
    verificationMaterial: { publicKey: { hint: key.publicKey.hint } },
    dsseEnvelope: {
      payload: statement.toString('base64'),
      payloadType: INTOTO_PAYLOAD_TYPE,
      signatures: [{ sig: signature.toString('base64') }],
    },
  };
  return Buffer.from(JSON.stringify(bundle));
}

export interface BundleReferrer {
  manifest: ManifestBlob;
  /** The entry the referrers API lists for this manifest (artifactType and annotations included). */
  descriptor: Descriptor;
  /** Empty config and bundle blobs; the registry must hold both before serving the manifest. */
  blobs: BlobContent[];
}

export interface BundleReferrerOptions {
  /** RFC 3339 time for `org.opencontainers.image.created` (cosign sets it); omitted by default to keep the manifest deterministic. */
  created?: string;
}

/** The referrer manifest carrying `bundle` for the manifest `subject`. */
export function buildBundleReferrerManifest(subject: Descriptor, bundle: Buffer, options: BundleReferrerOptions = {}): BundleReferrer {
  const bundleDigest = sha256(bundle);
  // Sorted keys, as Go marshals the map cosign builds.
  const annotations: Record<string, string> = {
    [BUNDLE_CONTENT_ANNOTATION]: 'dsse-envelope',
    [BUNDLE_PREDICATE_TYPE_ANNOTATION]: COSIGN_SIGN_PREDICATE_TYPE,
  };
  if (options.created !== undefined) annotations[CREATED_ANNOTATION] = options.created;
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: BUNDLE_V03_MEDIA_TYPE,
    config: { mediaType: OCI_EMPTY, digest: sha256(EMPTY_CONFIG), size: EMPTY_CONFIG.length },
    layers: [{ mediaType: BUNDLE_V03_MEDIA_TYPE, digest: bundleDigest, size: bundle.length }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations,
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const digest = sha256(bytes);
  return {
    manifest: { digest, mediaType: OCI_MANIFEST, bytes },
    descriptor: { mediaType: OCI_MANIFEST, digest, size: bytes.length, artifactType: BUNDLE_V03_MEDIA_TYPE, annotations: { ...annotations } },
    blobs: [
      { digest: sha256(EMPTY_CONFIG), mediaType: OCI_EMPTY, bytes: EMPTY_CONFIG },
      { digest: bundleDigest, mediaType: BUNDLE_V03_MEDIA_TYPE, bytes: bundle },
    ],
  };
}

function statementCovers(statement: unknown, expectedDigest: string): string | undefined {
  if (!isRecord(statement)) return 'DSSE payload is not an in-toto statement';
  if (statement._type !== INTOTO_STATEMENT_V1) return `unexpected statement type ${String(statement._type)}`;
  if (statement.predicateType !== COSIGN_SIGN_PREDICATE_TYPE) return `unexpected predicate type ${String(statement.predicateType)}`;
  const subjects = Array.isArray(statement.subject) ? statement.subject : [];
  const want = hexOf(expectedDigest);
  const covered = subjects.some((s) => isRecord(s) && isRecord(s.digest) && s.digest.sha256 === want);
  if (!covered) return `statement subjects do not include the expected manifest ${expectedDigest}`;
  return undefined;
}

/**
 * Verifies a bundle as sigstore verifiers do with a trusted public key and no
 * transparency log: the key named by the hint signed the DSSE PAE, and the
 * statement is a cosign signing statement whose subject is `expectedDigest`.
 */
export async function verifyBundle(bundleBytes: Buffer, publicKeys: readonly VerificationKey[], expectedDigest: string): Promise<VerifyResult> {
  if (publicKeys.length === 0) return fail('no trusted public keys');
  const bundle = parseJson(bundleBytes);
  if (!isRecord(bundle)) return fail('bundle is not JSON');
  if (bundle.mediaType !== BUNDLE_V03_MEDIA_TYPE && bundle.mediaType !== BUNDLE_V03_LEGACY_MEDIA_TYPE) {
    return fail(`unsupported bundle media type ${String(bundle.mediaType)}`);
  }
  const material = bundle.verificationMaterial;
  const publicKey = isRecord(material) ? material.publicKey : undefined;
  if (!isRecord(publicKey)) return fail('bundle is not signed with a public key (no verificationMaterial.publicKey)');
  const hint = publicKey.hint;
  let candidates = publicKeys;
  if (typeof hint === 'string' && hint !== '') {
    candidates = publicKeys.filter((k) => k.hint === hint);
    if (candidates.length === 0) return fail(`bundle was signed by an untrusted key (hint ${hint})`);
  }
  const envelope = bundle.dsseEnvelope;
  if (!isRecord(envelope) || typeof envelope.payload !== 'string' || typeof envelope.payloadType !== 'string' || !Array.isArray(envelope.signatures)) {
    return fail('bundle has no DSSE envelope');
  }
  if (envelope.payloadType !== INTOTO_PAYLOAD_TYPE) return fail(`unexpected DSSE payload type ${envelope.payloadType}`);
  const payload = Buffer.from(envelope.payload, 'base64');
  const pae = dssePae(envelope.payloadType, payload);
  let signer: VerificationKey | undefined;
  for (const entry of envelope.signatures) {
    if (!isRecord(entry) || typeof entry.sig !== 'string') continue;
    const der = Buffer.from(entry.sig, 'base64');
    for (const key of candidates) {
      if (await verifyDer(key.key, pae, der)) {
        signer = key;
        break;
      }
    }
    if (signer) break;
  }
  if (!signer) return fail('DSSE signature does not verify with any trusted key');
  const problem = statementCovers(parseJson(payload), expectedDigest);
  if (problem) return fail(problem);
  return { ok: true, keyFingerprint: signer.fingerprint };
}

/** Verifies a bundle referrer manifest: it refers to `expectedDigest`, its bundle blob is intact, and the bundle verifies. */
export async function verifyBundleReferrer(
  manifestBytes: Buffer,
  getBlob: BlobGetter,
  publicKeys: readonly VerificationKey[],
  expectedDigest: string,
): Promise<VerifyResult> {
  const manifest = parseJson(manifestBytes);
  if (!isRecord(manifest) || manifest.schemaVersion !== 2 || !Array.isArray(manifest.layers)) {
    return fail('bundle referrer is not an image manifest');
  }
  const subject = parseDescriptor(manifest.subject);
  if (!subject) return fail('bundle referrer has no subject');
  if (subject.digest !== expectedDigest) return fail(`bundle referrer refers to ${subject.digest}, not ${expectedDigest}`);
  const layer = manifest.layers.map(parseDescriptor).find((d) => d?.mediaType === BUNDLE_V03_MEDIA_TYPE || d?.mediaType === BUNDLE_V03_LEGACY_MEDIA_TYPE);
  if (!layer) return fail('bundle referrer has no bundle layer');
  const bundle = await fetchVerifiedBlob(getBlob, layer, 'bundle');
  if (typeof bundle === 'string') return fail(bundle);
  return verifyBundle(bundle, publicKeys, expectedDigest);
}
