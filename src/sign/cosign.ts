// Cosign key-based signatures ("simple signing"), stored under the tag
// `sha256-<hex>.sig` next to the signed manifest. Bytes follow what cosign
// (sigstore/sigstore payload.go, cosign pkg/oci on go-containerregistry) writes,
// so `cosign verify --key … --insecure-ignore-tlog=true` and openssl accept them.
import { hexOf, isDigest, sha256 } from '../oci/digest.js';
import { IMAGE_MANIFEST_TYPES, OCI_CONFIG, OCI_MANIFEST } from '../oci/mediatypes.js';
import { isRepositoryName, looksLikeRegistryHost } from '../oci/names.js';
import type { Descriptor, ManifestBlob } from '../oci/types.js';
import { fail, fetchVerifiedBlob, goJson, isRecord, parseDescriptor, parseJson, type BlobContent, type BlobGetter, type VerifyResult } from './common.js';
import { verifyDer } from './ecdsa.js';
import type { SigningKey, VerificationKey } from './keys.js';

export const COSIGN_SIMPLESIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';

/** The tag cosign looks up: `sha256:<hex>` -> `sha256-<hex>.sig`. */
export function cosignSignatureTag(digest: string): string {
  if (!isDigest(digest)) throw new Error(`not a sha256 digest: ${digest}`);
  return `sha256-${hexOf(digest)}.sig`;
}

/**
 * `<host>/<repository>` as go-containerregistry's Repository.Name() prints it:
 * cosign re-parses `docker-reference@digest` when verifying, so anything else
 * would make a signature it cannot read.
 */
export function isDockerReference(reference: string): boolean {
  const slash = reference.indexOf('/');
  if (slash <= 0) return false;
  const host = reference.slice(0, slash);
  const hostOk = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$/.test(host);
  return hostOk && looksLikeRegistryHost(host) && isRepositoryName(reference.slice(slash + 1));
}

/**
 * The simple-signing payload, byte for byte as cosign marshals it (Go struct
 * field order, `optional` a sorted map or null, Go's HTML escaping).
 */
export function cosignPayload(dockerReference: string, manifestDigest: string, optional: Record<string, string> | null = null): Buffer {
  if (!isDockerReference(dockerReference)) throw new Error(`not a <host>/<repository> reference: ${dockerReference}`);
  if (!isDigest(manifestDigest)) throw new Error(`not a sha256 digest: ${manifestDigest}`);
  const sortedOptional = optional === null ? null : Object.fromEntries(Object.entries(optional).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return Buffer.from(
    goJson({
      critical: {
        identity: { 'docker-reference': dockerReference },
        image: { 'docker-manifest-digest': manifestDigest },
        type: COSIGN_SIGNATURE_TYPE,
      },
      optional: sortedOptional,
    }),
  );
}

/** ECDSA signature of the payload bytes: standard base64 of the DER encoding, as the layer annotation carries it. */
export async function signCosign(key: SigningKey, payload: Buffer): Promise<string> {
  return (await key.sign(payload)).toString('base64');
}

// go-containerregistry's zero time, as its config marshals it.
const GO_ZERO_TIME = '0001-01-01T00:00:00Z';

/**
 * The image config cosign's signature image carries: go-containerregistry's
 * empty image with one appended layer (its diff_id is the payload digest, the
 * layer being uncompressed). Content is ignored by verifiers; matching it keeps
 * the manifest shape identical to cosign's and the blob deterministic.
 */
function cosignConfig(payloadDigest: string): Buffer {
  return Buffer.from(
    goJson({
      architecture: '',
      created: GO_ZERO_TIME,
      history: [{ created: GO_ZERO_TIME }],
      os: '',
      rootfs: { type: 'layers', diff_ids: [payloadDigest] },
      config: {},
    }),
  );
}

export interface CosignSignatureManifest {
  manifest: ManifestBlob;
  /** Config and payload blobs; the registry must hold both before serving the manifest. */
  blobs: BlobContent[];
}

/** The `.sig` manifest (OCI image manifest, one simple-signing layer) for one signed payload. */
export function buildCosignSignatureManifest(payload: Buffer, signatureB64: string): CosignSignatureManifest {
  const payloadDigest = sha256(payload);
  const config = cosignConfig(payloadDigest);
  const configDigest = sha256(config);
  // Key order of go-containerregistry's v1.Manifest and v1.Descriptor (mediaType, size, digest).
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, size: config.length, digest: configDigest },
    layers: [
      {
        mediaType: COSIGN_SIMPLESIGNING,
        size: payload.length,
        digest: payloadDigest,
        annotations: { [COSIGN_SIGNATURE_ANNOTATION]: signatureB64 },
      },
    ],
  };
  const bytes = Buffer.from(goJson(manifest));
  return {
    manifest: { digest: sha256(bytes), mediaType: OCI_MANIFEST, bytes },
    blobs: [
      { digest: configDigest, mediaType: OCI_CONFIG, bytes: config },
      { digest: payloadDigest, mediaType: COSIGN_SIMPLESIGNING, bytes: payload },
    ],
  };
}

/** What a verified payload claims; undefined when it is not a cosign simple-signing payload. */
export interface CosignClaims {
  dockerReference: string;
  manifestDigest: string;
  optional: Record<string, unknown> | null;
}

export function parseCosignPayload(payload: Buffer): CosignClaims | undefined {
  const doc = parseJson(payload);
  if (!isRecord(doc) || !isRecord(doc.critical)) return undefined;
  const { identity, image, type } = doc.critical;
  if (type !== COSIGN_SIGNATURE_TYPE || !isRecord(identity) || !isRecord(image)) return undefined;
  const dockerReference = identity['docker-reference'];
  const manifestDigest = image['docker-manifest-digest'];
  if (typeof dockerReference !== 'string' || typeof manifestDigest !== 'string') return undefined;
  const optional = isRecord(doc.optional) ? doc.optional : null;
  return { dockerReference, manifestDigest, optional };
}

async function findSigner(keys: readonly VerificationKey[], data: Buffer, der: Buffer): Promise<VerificationKey | undefined> {
  for (const key of keys) if (await verifyDer(key.key, data, der)) return key;
  return undefined;
}

async function verifyLayer(layer: Descriptor, getBlob: BlobGetter, keys: readonly VerificationKey[], expectedDigest: string): Promise<VerifyResult> {
  const signatureB64 = layer.annotations?.[COSIGN_SIGNATURE_ANNOTATION];
  if (!signatureB64) return fail(`layer ${layer.digest} has no ${COSIGN_SIGNATURE_ANNOTATION} annotation`);
  const payload = await fetchVerifiedBlob(getBlob, layer, 'signature payload');
  if (typeof payload === 'string') return fail(payload);
  const signer = await findSigner(keys, payload, Buffer.from(signatureB64, 'base64'));
  if (!signer) return fail(`signature on payload ${layer.digest} does not verify with any trusted key`);
  const claims = parseCosignPayload(payload);
  if (!claims) return fail(`payload ${layer.digest} is not a cosign simple-signing payload`);
  if (claims.manifestDigest !== expectedDigest) {
    return fail(`payload signs ${claims.manifestDigest}, not the expected manifest ${expectedDigest}`);
  }
  return { ok: true, keyFingerprint: signer.fingerprint };
}

/**
 * Verifies a `.sig` manifest as cosign does: some simple-signing layer must have
 * a payload whose bytes match its descriptor, a signature by a trusted key over
 * those bytes, and a docker-manifest-digest equal to `expectedDigest`.
 */
export async function verifyCosign(
  manifestBytes: Buffer,
  getBlob: BlobGetter,
  publicKeys: readonly VerificationKey[],
  expectedDigest: string,
): Promise<VerifyResult> {
  if (publicKeys.length === 0) return fail('no trusted public keys');
  const manifest = parseJson(manifestBytes);
  if (!isRecord(manifest) || manifest.schemaVersion !== 2 || !Array.isArray(manifest.layers)) {
    return fail('cosign signature manifest is not an image manifest');
  }
  if (manifest.mediaType !== undefined && !(typeof manifest.mediaType === 'string' && IMAGE_MANIFEST_TYPES.has(manifest.mediaType))) {
    return fail(`cosign signature manifest has media type ${String(manifest.mediaType)}`);
  }
  const layers = manifest.layers.map(parseDescriptor).filter((d): d is Descriptor => d?.mediaType === COSIGN_SIMPLESIGNING);
  if (layers.length === 0) return fail('cosign signature manifest has no simple-signing layer');
  const reasons: string[] = [];
  for (const layer of layers) {
    const result = await verifyLayer(layer, getBlob, publicKeys, expectedDigest);
    if (result.ok) return result;
    reasons.push(result.reason);
  }
  return fail(reasons.join('; '));
}
