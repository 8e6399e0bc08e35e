// Box signatures as clients see them through the proxy: the cosign `.sig` payload and signature checked by
// openssl (an independent verifier), the sigstore bundle referrer by @sigstore/verify, `boxproxy verify` and
// `boxproxy key` as a user runs them; signatures made once, and kept with the key across a restart.
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { bundleFromJSON } from '@sigstore/bundle';
import { Verifier, toSignedEntity, toTrustMaterial, type KeyFinderFunc } from '@sigstore/verify';
import { stringify as toYaml } from 'yaml';
import { hexOf, sha256 } from '../../src/oci/digest.js';
import { OCI_INDEX, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import type { ImageIndex, ImageManifest } from '../../src/oci/types.js';
import { verifyBoxReference } from '../../src/cli/commands/verify.js';
import { BUNDLE_V03_MEDIA_TYPE } from '../../src/sign/bundle.js';
import { COSIGN_SIGNATURE_ANNOTATION, COSIGN_SIMPLESIGNING, parseCosignPayload } from '../../src/sign/cosign.js';
import { generateKeyPair, parsePublicKeys, type VerificationKey } from '../../src/sign/keys.js';
import { wasiAppImage } from '../fixtures/images.js';
import { rawRequest } from '../helpers/http.js';
import { hostPlatform } from '../helpers/images.js';
import { makeTempDir, removeTempDir, run, skipUnlessTools } from '../helpers/proc.js';
import type { TestProxy } from '../helpers/proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { boxproxyCli, convertThrough, pushSpec, startBoxProxy, type ConversionStatus, type PushedImage } from './boxes-helpers.js';

/** @sigstore/verify configured for one public key, no transparency log, no timestamps (as test/sign/ does). */
function sigstoreVerify(bundleBytes: Buffer, key: VerificationKey): void {
  const trustedRoot = { mediaType: 'application/vnd.dev.sigstore.trustedroot.v0.2+json', tlogs: [], certificateAuthorities: [], ctlogs: [], timestampAuthorities: [] };
  const keyFinder: KeyFinderFunc = (hint) => {
    if (hint !== key.hint) throw new Error(`unknown key hint ${hint}`);
    return { publicKey: createPublicKey(key.pem), validFor: () => true };
  };
  const verifier = new Verifier(toTrustMaterial(trustedRoot, keyFinder), { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
  verifier.verify(toSignedEntity(bundleFromJSON(JSON.parse(bundleBytes.toString('utf8')))));
}

async function get(proxy: TestProxy, path: string, accept = OCI_MANIFEST): Promise<{ body: Buffer; digest: string | undefined }> {
  const res = await rawRequest(proxy.url, 'GET', path, { accept });
  assert.equal(res.status, 200, `${path}: ${res.body.toString().slice(0, 300)}`);
  const digest = res.headers['docker-content-digest'];
  return { body: res.body, digest: typeof digest === 'string' ? digest : undefined };
}

describe('Box signatures through boxproxy', { skip: skipUnlessTools('docker-registry', 'skopeo', 'openssl') }, () => {
  let registry: TestRegistry;
  let proxy: TestProxy;
  let restarted: TestProxy | undefined;
  let hello: PushedImage;
  let converted: ConversionStatus;
  let boxDigest: string;
  let work: string;
  let pubPem: string;
  let pubFile: string;
  let publicKey: VerificationKey;
  let configFile: string;

  before(async () => {
    registry = await startRegistry();
    work = await makeTempDir('signing-work');
    hello = await pushSpec(registry, 'signing/hello', '1', { ...wasiAppImage(`hello from a Box (signing)\n`), architecture: hostPlatform().architecture });
    proxy = await startBoxProxy({ registry });
    converted = await convertThrough(proxy, `${registry.host}/signing/hello:1`, hello.digest);
    assert.equal(converted.state, 'done', JSON.stringify(converted));
    boxDigest = converted.box as string;
    pubPem = await (await fetch(`${proxy.url}/boxproxy/v1/signing-key`)).text();
    pubFile = join(work, 'pub.pem');
    await writeFile(pubFile, pubPem);
    [publicKey] = (await parsePublicKeys(pubPem)) as [VerificationKey];
    configFile = join(work, 'boxproxy.yaml');
    await writeFile(configFile, toYaml({ storage: { path: proxy.storagePath }, upstreams: [{ name: registry.host, url: registry.url }] }));
  });

  after(async () => {
    await restarted?.stop();
    await proxy?.stop();
    await registry?.stop();
    if (work) await removeTempDir(work);
    if (hello) await removeTempDir(hello.layout);
  });

  test('the public key is served and printed by `boxproxy key`; the private key file is 0600 and never served', async () => {
    assert.match(pubPem, /^-----BEGIN PUBLIC KEY-----\n/);
    assert.doesNotMatch(pubPem, /PRIVATE/);
    const printed = await boxproxyCli(['key', '--config', configFile]);
    assert.equal(printed.code, 0, printed.stderr);
    assert.equal(printed.stdout, pubPem);
    const keyFile = join(proxy.storagePath, 'keys', 'signing.pem');
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
    assert.doesNotMatch(await proxy.log(), /PRIVATE KEY/, 'the private key never reaches the log');
  });

  for (const repo of ['wasm/signing/hello', 'signing/hello']) {
    test(`the cosign .sig under ${repo}, fetched through the proxy, verifies with openssl`, async () => {
      const sig = await get(proxy, `/v2/${repo}/manifests/sha256-${hexOf(boxDigest)}.sig`);
      assert.equal(sig.digest, converted.signatures?.cosign.descriptor.digest);
      const manifest = JSON.parse(sig.body.toString('utf8')) as ImageManifest;
      assert.equal(manifest.mediaType, OCI_MANIFEST);
      const layer = manifest.layers[0];
      assert.ok(layer && layer.mediaType === COSIGN_SIMPLESIGNING, 'one simple-signing layer');
      const payload = (await get(proxy, `/v2/${repo}/blobs/${layer.digest}`)).body;
      assert.equal(sha256(payload), layer.digest);
      assert.equal(parseCosignPayload(payload)?.manifestDigest, boxDigest, 'the payload names the Box digest');

      const dir = join(work, repo.replaceAll('/', '_'));
      await run('mkdir', ['-p', dir]);
      await writeFile(join(dir, 'payload.json'), payload);
      await writeFile(join(dir, 'sig.der'), Buffer.from(layer.annotations?.[COSIGN_SIGNATURE_ANNOTATION] ?? '', 'base64'));
      const ok = await run('openssl', ['dgst', '-sha256', '-verify', pubFile, '-signature', join(dir, 'sig.der'), join(dir, 'payload.json')]);
      assert.match(ok.stdout, /Verified OK/);

      // openssl is a real verifier: one changed byte of the payload fails it.
      await writeFile(join(dir, 'payload.json'), Buffer.from(payload.toString('utf8').replace('cosign container image signature', 'cosign container image signaturE')));
      const bad = await run('openssl', ['dgst', '-sha256', '-verify', pubFile, '-signature', join(dir, 'sig.der'), join(dir, 'payload.json')], { allowFailure: true });
      assert.notEqual(bad.code, 0);
      assert.match(bad.stdout + bad.stderr, /Verification failure/);
    });
  }

  test('the sigstore bundle referrer verifies with @sigstore/verify (public key, no tlog); a tampered one does not', async () => {
    const referrers = JSON.parse((await get(proxy, `/v2/wasm/signing/hello/referrers/${boxDigest}`, OCI_INDEX)).body.toString()) as ImageIndex;
    const entry = referrers.manifests.find((d) => d.artifactType === BUNDLE_V03_MEDIA_TYPE);
    assert.ok(entry, 'the bundle is listed among the Box\'s referrers');
    const manifest = JSON.parse((await get(proxy, `/v2/wasm/signing/hello/manifests/${entry.digest}`)).body.toString()) as ImageManifest;
    assert.equal(manifest.subject?.digest, boxDigest);
    const layer = manifest.layers.find((l) => l.mediaType === BUNDLE_V03_MEDIA_TYPE);
    assert.ok(layer);
    const bundle = (await get(proxy, `/v2/wasm/signing/hello/blobs/${layer.digest}`)).body;
    sigstoreVerify(bundle, publicKey);
    const statement = JSON.parse(Buffer.from((JSON.parse(bundle.toString()) as { dsseEnvelope: { payload: string } }).dsseEnvelope.payload, 'base64').toString()) as {
      subject: Array<{ digest: { sha256: string } }>;
    };
    assert.equal(statement.subject[0]?.digest.sha256, hexOf(boxDigest), 'the statement names the Box');

    const doc = JSON.parse(bundle.toString()) as { dsseEnvelope: { payload: string } };
    doc.dsseEnvelope.payload = Buffer.from(Buffer.from(doc.dsseEnvelope.payload, 'base64').toString().replace(hexOf(boxDigest), hexOf(hello.digest))).toString('base64');
    assert.throws(() => sigstoreVerify(Buffer.from(JSON.stringify(doc)), publicKey));
    const other = await generateKeyPair();
    assert.throws(() => sigstoreVerify(bundle, other.publicKey));
  });

  test('`boxproxy verify` passes for the Box reference; in-process for the tag index and the Box digest', async () => {
    const cli = await boxproxyCli(['verify', `${proxy.host}/wasm/signing/hello:1`, '--key', pubFile]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, new RegExp(`Verified OK: .*${boxDigest}.*cosign and bundle`));
    for (const reference of [`${proxy.host}/signing/hello:1`, `${proxy.host}/signing/hello@${boxDigest}`, `${proxy.host}/wasm/signing/hello@${boxDigest}`]) {
      const result = await verifyBoxReference({ reference, publicKeys: [publicKey], require: ['cosign', 'bundle'] });
      assert.ok(result.ok, `${reference}: ${result.reasons.join('; ')}`);
      assert.equal(result.boxDigest, boxDigest);
      assert.deepEqual(result.keyFingerprints, [publicKey.fingerprint]);
    }
    // --config trusts the configured signing key.
    const byConfig = await boxproxyCli(['verify', `${proxy.host}/wasm/signing/hello:1`, '--config', configFile]);
    assert.equal(byConfig.code, 0, byConfig.stderr);
  });

  test('`boxproxy verify` fails with a foreign key, for an image that is not a Box, and without a key', async () => {
    const other = await generateKeyPair();
    const otherFile = join(work, 'other.pem');
    await writeFile(otherFile, other.publicKey.pem);
    const foreign = await boxproxyCli(['verify', `${proxy.host}/wasm/signing/hello:1`, '--key', otherFile]);
    assert.equal(foreign.code, 1);
    assert.match(foreign.stderr, /verification FAILED/);
    assert.match(foreign.stderr, /does not verify with any trusted key|untrusted key/);

    const linux = await verifyBoxReference({ reference: `${proxy.host}/signing/hello@${hello.digest}`, publicKeys: [publicKey] });
    assert.equal(linux.ok, false);
    assert.match(linux.reasons.join('; '), /not a Box/);

    const noKey = await boxproxyCli(['verify', `${proxy.host}/wasm/signing/hello:1`], { BOXPROXY_KEY: '' });
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /no trusted public key/);
  });

  test('signatures are made once: repeated requests and a repeated pre-conversion return the same signature digests', async () => {
    const tag = `sha256-${hexOf(boxDigest)}.sig`;
    const first = await get(proxy, `/v2/wasm/signing/hello/manifests/${tag}`);
    const second = await get(proxy, `/v2/signing/hello/manifests/${tag}`);
    assert.equal(first.digest, second.digest);
    assert.ok(first.body.equals(second.body));
    const again = await convertThrough(proxy, `${registry.host}/signing/hello:1`, hello.digest);
    assert.deepEqual(again.signatures, converted.signatures);
    assert.equal(again.attempts, 1);
  });

  test('a restart keeps the key and the existing signatures', async () => {
    const sigBefore = await get(proxy, `/v2/wasm/signing/hello/manifests/sha256-${hexOf(boxDigest)}.sig`);
    await proxy.close();
    restarted = await startBoxProxy({ registry, storagePath: proxy.storagePath });
    assert.equal(await (await fetch(`${restarted.url}/boxproxy/v1/signing-key`)).text(), pubPem, 'same public key');
    assert.match(await restarted.log(), /"loaded the Box signing key"/);
    const sigAfter = await get(restarted, `/v2/wasm/signing/hello/manifests/sha256-${hexOf(boxDigest)}.sig`);
    assert.equal(sigAfter.digest, sigBefore.digest);
    assert.ok(sigAfter.body.equals(sigBefore.body));
    const result = await verifyBoxReference({ reference: `${restarted.host}/wasm/signing/hello:1`, publicKeys: [publicKey], require: ['cosign', 'bundle'] });
    assert.ok(result.ok, result.reasons.join('; '));
    assert.deepEqual((await convertThrough(restarted, `${registry.host}/signing/hello:1`, hello.digest)).signatures, converted.signatures);
  });
});
