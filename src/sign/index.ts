// Public API of the signing module (keys, both signature formats, sign/verify a manifest).
export { DerSignatureError, derToRaw, rawToDer } from './der.js';
export {
  KeyFileError,
  SigningKey,
  fingerprint,
  generateKeyPair,
  loadOrCreateKey,
  loadPrivateKey,
  loadPublicKeys,
  parsePublicKeys,
  publicKeyPem,
  savePrivateKey,
  type KeyFileErrorCode,
  type LoadOptions,
  type SaveOptions,
  type VerificationKey,
} from './keys.js';
export type { BlobContent, BlobGetter, VerifyResult } from './common.js';
export {
  COSIGN_SIGNATURE_ANNOTATION,
  COSIGN_SIMPLESIGNING,
  buildCosignSignatureManifest,
  cosignPayload,
  cosignSignatureTag,
  isDockerReference,
  parseCosignPayload,
  signCosign,
  verifyCosign,
  type CosignClaims,
  type CosignSignatureManifest,
} from './cosign.js';
export {
  BUNDLE_V03_MEDIA_TYPE,
  COSIGN_SIGN_PREDICATE_TYPE,
  buildBundleReferrerManifest,
  dssePae,
  inTotoStatement,
  signBundle,
  verifyBundle,
  verifyBundleReferrer,
  type BundleReferrer,
  type BundleReferrerOptions,
} from './bundle.js';
export {
  signManifest,
  verifyManifestSignatures,
  type ManifestSignatures,
  type SignRequest,
  type SignatureFormat,
  type SignatureSource,
  type SignatureVerification,
  type VerifyManifestOptions,
} from './signer.js';
