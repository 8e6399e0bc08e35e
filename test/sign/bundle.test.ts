import assert from 'node:assert/strict';
import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { describe, it } from 'node:test';
import { bundleFromJSON } from '@sigstore/bundle';
import { Verifier, toSignedEntity, toTrustMaterial, type KeyFinderFunc } from '@sigstore/verify';
import { sha256 } from '../../src/oci/digest.js';
import { OCI_EMPTY, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import type { Descriptor } from '../../src/oci/types.js';
import {
  BUNDLE_V03_MEDIA_TYPE,
  COSIGN_SIGN_PREDICATE_TYPE,
  buildBundleReferrerManifest,
  dssePae,
  inTotoStatement,
  signBundle,
  verifyBundle,
  verifyBundleReferrer,
} from '../../src/sign/bundle.js';
import type { BlobGetter } from '../../src/sign/common.js';
import { generateKeyPair, type VerificationKey } from '../../src/sign/keys.js';

const DIGEST = 'sha256:' + '12'.repeat(32);
const OTHER_DIGEST = 'sha256:' + '34'.repeat(32);
const SUBJECT: Descriptor = { mediaType: OCI_MANIFEST, digest: DIGEST, size: 1234 };
const REF = 'boxproxy.example:5000/library/python';

interface SerializedBundle {
  mediaType: string;
  verificationMaterial: { publicKey: { hint: string } };
  dsseEnvelope: { payload: string; payloadType: string; signatures: Array<{ sig: string }> };
}

/** @sigstore/verify configured for a public key and no transparency log or timestamps. */
function sigstoreVerify(bundleBytes: Buffer, keys: VerificationKey[]): void {
  const trustedRoot = { mediaType: 'application/vnd.dev.sigstore.trustedroot.v0.2+json', tlogs: [], certificateAuthorities: [], ctlogs: [], timestampAuthorities: [] };
  const keyFinder: KeyFinderFunc = (hint) => {
    const key = keys.find((k) => k.hint === hint);
    if (!key) throw new Error(`unknown key hint ${hint}`);
    return { publicKey: createPublicKey(key.pem), validFor: () => true };
  };
  const trustMaterial = toTrustMaterial(trustedRoot, keyFinder);
  const verifier = new Verifier(trustMaterial, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
  const bundle = bundleFromJSON(JSON.parse(bundleBytes.toString()));
  verifier.verify(toSignedEntity(bundle));
}

function getterFor(blobs: Array<{ digest: string; bytes: Buffer }>): BlobGetter {
  const map = new Map(blobs.map((b) => [b.digest, b.bytes]));
  return async (digest) => map.get(digest);
}

function rewrite(bundle: Buffer, change: (b: SerializedBundle) => void): Buffer {
  const doc = JSON.parse(bundle.toString()) as SerializedBundle;
  change(doc);
  return Buffer.from(JSON.stringify(doc));
}

describe('in-toto statement and DSSE PAE', () => {
  it('statement names the manifest by sha256 with the cosign sign predicate', () => {
    assert.deepEqual(JSON.parse(inTotoStatement(REF, DIGEST).toString()), {
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: REF, digest: { sha256: '12'.repeat(32) } }],
      predicateType: 'https://sigstore.dev/cosign/sign/v1',
      predicate: {},
    });
  });

  it('PAE matches the DSSE specification example', () => {
    assert.equal(dssePae('http://example.com/HelloWorld', Buffer.from('hello world')).toString(), 'DSSEv1 29 http://example.com/HelloWorld 11 hello world');
    // Lengths count bytes, not characters.
    assert.equal(dssePae('t', Buffer.from('é')).toString(), 'DSSEv1 1 t 2 é');
  });
});

describe('sigstore bundle', () => {
  it('has a public-key hint, a DSSE envelope, and a signature over the PAE', async () => {
    const key = await generateKeyPair();
    const statement = inTotoStatement(REF, DIGEST);
    const bundle = JSON.parse((await signBundle(key, statement)).toString()) as SerializedBundle;
    assert.equal(bundle.mediaType, BUNDLE_V03_MEDIA_TYPE);
    assert.deepEqual(bundle.verificationMaterial, { publicKey: { hint: key.publicKey.hint } });
    assert.equal(bundle.dsseEnvelope.payloadType, 'application/vnd.in-toto+json');
    assert.deepEqual(Buffer.from(bundle.dsseEnvelope.payload, 'base64'), statement);
    const sig = Buffer.from(bundle.dsseEnvelope.signatures[0]?.sig ?? '', 'base64');
    const pae = dssePae('application/vnd.in-toto+json', statement);
    assert.ok(nodeVerify('sha256', pae, { key: createPublicKey(key.publicKey.pem), dsaEncoding: 'der' }, sig));
  });

  it('verifies with @sigstore/verify (public key, no tlog) and is rejected there when tampered or foreign', async () => {
    const key = await generateKeyPair();
    const bundle = await signBundle(key, inTotoStatement(REF, DIGEST));
    sigstoreVerify(bundle, [key.publicKey]);

    const tampered = rewrite(bundle, (b) => {
      b.dsseEnvelope.payload = inTotoStatement(REF, OTHER_DIGEST).toString('base64');
    });
    assert.throws(() => sigstoreVerify(tampered, [key.publicKey]));

    const stranger = await generateKeyPair();
    assert.throws(() => sigstoreVerify(bundle, [stranger.publicKey]));
    // A stranger's key registered under our hint: the signature itself does not verify.
    const impostor: VerificationKey = { ...stranger.publicKey, hint: key.publicKey.hint };
    assert.throws(() => sigstoreVerify(bundle, [impostor]));
  });

  it('verifyBundle accepts the genuine bundle and names the key', async () => {
    const key = await generateKeyPair();
    const bundle = await signBundle(key, inTotoStatement(REF, DIGEST));
    assert.deepEqual(await verifyBundle(bundle, [key.publicKey], DIGEST), { ok: true, keyFingerprint: key.fingerprint });
  });

  it('verifyBundle rejects tampering, swapped signatures, foreign keys and other digests with a reason', async () => {
    const key = await generateKeyPair();
    const stranger = await generateKeyPair();
    const bundle = await signBundle(key, inTotoStatement(REF, DIGEST));
    const otherBundle = JSON.parse((await signBundle(key, inTotoStatement(REF, OTHER_DIGEST))).toString()) as SerializedBundle;

    const cases: Array<[string, Buffer, VerificationKey[], string, RegExp]> = [
      [
        'tampered payload',
        rewrite(bundle, (b) => {
          b.dsseEnvelope.payload = inTotoStatement(REF, OTHER_DIGEST).toString('base64');
        }),
        [key.publicKey],
        OTHER_DIGEST,
        /DSSE signature does not verify/,
      ],
      [
        'swapped signature',
        rewrite(bundle, (b) => {
          b.dsseEnvelope.signatures = otherBundle.dsseEnvelope.signatures;
        }),
        [key.publicKey],
        DIGEST,
        /DSSE signature does not verify/,
      ],
      ['untrusted key', bundle, [stranger.publicKey], DIGEST, /untrusted key \(hint/],
      [
        'untrusted key without hint',
        rewrite(bundle, (b) => {
          b.verificationMaterial.publicKey.hint = '';
        }),
        [stranger.publicKey],
        DIGEST,
        /does not verify with any trusted key/,
      ],
      ['other manifest digest', bundle, [key.publicKey], OTHER_DIGEST, /do not include the expected manifest/],
      [
        'wrong payload type',
        rewrite(bundle, (b) => {
          b.dsseEnvelope.payloadType = 'text/plain';
        }),
        [key.publicKey],
        DIGEST,
        /payload type/,
      ],
      [
        'wrong media type',
        rewrite(bundle, (b) => {
          b.mediaType = 'application/json';
        }),
        [key.publicKey],
        DIGEST,
        /media type/,
      ],
      ['no keys', bundle, [], DIGEST, /no trusted public keys/],
      ['not json', Buffer.from('{'), [key.publicKey], DIGEST, /not JSON/],
    ];
    for (const [name, bytes, keys, digest, reason] of cases) {
      const result = await verifyBundle(bytes, keys, digest);
      assert.equal(result.ok, false, name);
      assert.match(!result.ok ? result.reason : '', reason, name);
    }
  });

  it('a statement with another predicate type is not accepted as an image signature', async () => {
    const key = await generateKeyPair();
    const statement = Buffer.from(
      JSON.stringify({
        _type: 'https://in-toto.io/Statement/v1',
        subject: [{ name: REF, digest: { sha256: '12'.repeat(32) } }],
        predicateType: 'https://slsa.dev/provenance/v1',
        predicate: {},
      }),
    );
    const result = await verifyBundle(await signBundle(key, statement), [key.publicKey], DIGEST);
    assert.match(!result.ok ? result.reason : '', /predicate type/);
  });
});

describe('bundle referrer manifest', () => {
  it('has the artifact type, empty config, bundle layer, subject and annotations cosign uses', async () => {
    const key = await generateKeyPair();
    const bundle = await signBundle(key, inTotoStatement(REF, DIGEST));
    const referrer = buildBundleReferrerManifest(SUBJECT, bundle);
    const manifest = JSON.parse(referrer.manifest.bytes.toString()) as Record<string, unknown>;
    assert.deepEqual(manifest, {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: BUNDLE_V03_MEDIA_TYPE,
      config: { mediaType: OCI_EMPTY, digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 },
      layers: [{ mediaType: BUNDLE_V03_MEDIA_TYPE, digest: sha256(bundle), size: bundle.length }],
      subject: SUBJECT,
      annotations: {
        'dev.sigstore.bundle.content': 'dsse-envelope',
        'dev.sigstore.bundle.predicateType': COSIGN_SIGN_PREDICATE_TYPE,
      },
    });
    assert.equal(referrer.manifest.digest, sha256(referrer.manifest.bytes));
    assert.deepEqual(referrer.descriptor, {
      mediaType: OCI_MANIFEST,
      digest: referrer.manifest.digest,
      size: referrer.manifest.bytes.length,
      artifactType: BUNDLE_V03_MEDIA_TYPE,
      annotations: manifest.annotations,
    });
    assert.deepEqual(
      referrer.blobs.map((b) => [b.mediaType, b.digest === sha256(b.bytes)]),
      [
        [OCI_EMPTY, true],
        [BUNDLE_V03_MEDIA_TYPE, true],
      ],
    );
    // Deterministic for the same bundle; `created` is opt-in.
    assert.deepEqual(buildBundleReferrerManifest(SUBJECT, bundle).manifest.bytes, referrer.manifest.bytes);
    const dated = buildBundleReferrerManifest(SUBJECT, bundle, { created: '2026-01-02T03:04:05Z' });
    assert.equal(dated.descriptor.annotations?.['org.opencontainers.image.created'], '2026-01-02T03:04:05Z');
  });

  it('verifyBundleReferrer checks subject, bundle blob and bundle', async () => {
    const key = await generateKeyPair();
    const bundle = await signBundle(key, inTotoStatement(REF, DIGEST));
    const referrer = buildBundleReferrerManifest(SUBJECT, bundle);
    const getBlob = getterFor(referrer.blobs);
    assert.equal((await verifyBundleReferrer(referrer.manifest.bytes, getBlob, [key.publicKey], DIGEST)).ok, true);

    const wrongSubject = await verifyBundleReferrer(referrer.manifest.bytes, getBlob, [key.publicKey], OTHER_DIGEST);
    assert.match(!wrongSubject.ok ? wrongSubject.reason : '', /refers to/);

    const swappedBlob: BlobGetter = async (d) => (d === sha256(bundle) ? Buffer.from(bundle.toString().replace('"mediaType"', '"mediaType" ')) : getBlob(d));
    const tampered = await verifyBundleReferrer(referrer.manifest.bytes, swappedBlob, [key.publicKey], DIGEST);
    assert.match(!tampered.ok ? tampered.reason : '', /digest mismatch/);

    const missing = await verifyBundleReferrer(referrer.manifest.bytes, async () => undefined, [key.publicKey], DIGEST);
    assert.match(!missing.ok ? missing.reason : '', /missing/);
  });
});
