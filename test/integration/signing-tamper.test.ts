// `boxproxy verify` against forged content. A real Box is made and signed by boxproxy (real registry upstream);
// a small in-process registry then serves a copy of it with one thing altered, which is what a compromised
// mirror could do and a real registry cannot be made to do: a tampered payload, a swapped signature, a signature
// of another manifest, an altered Box manifest. The untouched copy verifies, so each failure is the alteration's.
// cosign itself checks the same copies: the bundle referrer as served, and the `.sig` tag with the referrers
// withheld (cosign 3 falls back to it only when there is no bundle).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hexOf, sha256 } from '../../src/oci/digest.js';
import { OCI_INDEX, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import type { ImageIndex, ImageManifest } from '../../src/oci/types.js';
import { verifyBoxReference } from '../../src/cli/commands/verify.js';
import { BUNDLE_V03_MEDIA_TYPE } from '../../src/sign/bundle.js';
import { COSIGN_SIGNATURE_ANNOTATION } from '../../src/sign/cosign.js';
import { generateKeyPair, loadPrivateKey, parsePublicKeys, type VerificationKey } from '../../src/sign/keys.js';
import { signManifest } from '../../src/sign/signer.js';
import { wasiAppImage } from '../fixtures/images.js';
import { rawRequest } from '../helpers/http.js';
import { hostPlatform } from '../helpers/images.js';
import { COSIGN_REJECTED, COSIGN_VERIFIED_BUNDLE, COSIGN_VERIFIED_SIG, cosignVerify } from '../helpers/cosign.js';
import { makeTempDir, removeTempDir, skipUnlessTools } from '../helpers/proc.js';
import type { TestProxy } from '../helpers/proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skipUnlessTestTools } from '../helpers/tools.js';
import { assertPulledBoxRunsAlikeInEngines, boxproxyCli, boxproxyRun, convertThrough, pushSpec, startBoxProxy, type ConversionStatus, type PushedImage } from './boxes-helpers.js';

const REPO = 'wasm/tamper/hello';

interface Item {
  mediaType: string;
  bytes: Buffer;
}

/** What a registry holds for one repository: manifests by tag or digest, blobs, referrers lists by subject. */
interface Snapshot {
  manifests: Map<string, Item>;
  blobs: Map<string, Buffer>;
  referrers: Map<string, ImageIndex>;
}

function cloneSnapshot(s: Snapshot): Snapshot {
  return { manifests: new Map(s.manifests), blobs: new Map(s.blobs), referrers: new Map(s.referrers) };
}

/** A registry serving `state.snapshot` under REPO, answering like distribution (404 for what it lacks). */
async function startSnapshotRegistry(state: { snapshot: Snapshot }): Promise<{ host: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    // Decoded as Go's net/http (distribution) does: clients may send `sha256%3A…`.
    const path = decodeURIComponent((req.url ?? '/').split('?')[0] as string);
    const m = new RegExp(`^/v2/${REPO}/(manifests|blobs|referrers)/([^/]+)$`).exec(path);
    const notFound = () => res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}');
    if (path === '/v2/') return void res.writeHead(200).end('{}');
    if (!m) return notFound();
    const [, kind, ref] = m as unknown as [string, string, string];
    if (kind === 'manifests') {
      const item = state.snapshot.manifests.get(ref);
      if (!item) return notFound();
      return void res.writeHead(200, { 'content-type': item.mediaType, 'docker-content-digest': sha256(item.bytes) }).end(item.bytes);
    }
    if (kind === 'blobs') {
      const blob = state.snapshot.blobs.get(ref);
      if (!blob) return notFound();
      return void res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(blob);
    }
    const index = state.snapshot.referrers.get(ref) ?? { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] };
    res.writeHead(200, { 'content-type': OCI_INDEX }).end(JSON.stringify(index));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Copies the Box, its config, its signatures and their blobs out of boxproxy. */
async function snapshotFromProxy(proxy: TestProxy, boxDigest: string): Promise<Snapshot> {
  const snapshot: Snapshot = { manifests: new Map(), blobs: new Map(), referrers: new Map() };
  const fetchBytes = async (path: string, accept = OCI_MANIFEST): Promise<Buffer> => {
    const res = await rawRequest(proxy.url, 'GET', `/v2/${REPO}/${path}`, { accept });
    assert.equal(res.status, 200, `${path}: ${res.body.toString()}`);
    return res.body;
  };
  const addManifest = async (reference: string): Promise<ImageManifest> => {
    const bytes = await fetchBytes(`manifests/${reference}`);
    snapshot.manifests.set(reference, { mediaType: OCI_MANIFEST, bytes });
    snapshot.manifests.set(sha256(bytes), { mediaType: OCI_MANIFEST, bytes });
    const manifest = JSON.parse(bytes.toString()) as ImageManifest;
    for (const d of [manifest.config, ...manifest.layers]) snapshot.blobs.set(d.digest, await fetchBytes(`blobs/${d.digest}`));
    return manifest;
  };
  await addManifest('1');
  await addManifest(`sha256-${hexOf(boxDigest)}.sig`);
  const referrers = JSON.parse((await fetchBytes(`referrers/${boxDigest}`, OCI_INDEX)).toString()) as ImageIndex;
  snapshot.referrers.set(boxDigest, referrers);
  for (const d of referrers.manifests) await addManifest(d.digest);
  return snapshot;
}

/** Replaces the `.sig` manifest of `boxDigest` with `change(manifest)`; returns the new manifest. */
function rewriteSig(s: Snapshot, boxDigest: string, change: (m: ImageManifest) => void): ImageManifest {
  const tag = `sha256-${hexOf(boxDigest)}.sig`;
  const manifest = JSON.parse((s.manifests.get(tag) as Item).bytes.toString()) as ImageManifest;
  change(manifest);
  const bytes = Buffer.from(JSON.stringify(manifest));
  s.manifests.set(tag, { mediaType: OCI_MANIFEST, bytes });
  s.manifests.set(sha256(bytes), { mediaType: OCI_MANIFEST, bytes });
  return manifest;
}

describe('boxproxy verify refuses forged Boxes and signatures', { skip: skipUnlessTools('docker-registry', 'skopeo') || skipUnlessTestTools('cosign') }, () => {
  let registry: TestRegistry;
  let proxy: TestProxy;
  let hello: PushedImage;
  let converted: ConversionStatus;
  let boxDigest: string;
  let publicKey: VerificationKey;
  let original: Snapshot;
  const state: { snapshot: Snapshot } = { snapshot: { manifests: new Map(), blobs: new Map(), referrers: new Map() } };
  let fake: { host: string; close(): Promise<void> };
  let work: string;

  const verify = (snapshot: Snapshot, keys: VerificationKey[] = [publicKey], reference = `${fake.host}/${REPO}:1`) => {
    state.snapshot = snapshot;
    return verifyBoxReference({ reference, publicKeys: keys });
  };

  let cosignKey: string;
  /** cosign verify against the fake serving `snapshot`: as served (the bundle referrer), or without referrers (the .sig). */
  const cosignOn = async (snapshot: Snapshot, format: 'bundle' | 'sig', key = cosignKey) => {
    state.snapshot = format === 'bundle' ? snapshot : { ...snapshot, referrers: new Map() };
    return cosignVerify(`${fake.host}/${REPO}:1`, key, join(work, 'cosign-home'));
  };
  const cosignRejects = async (snapshot: Snapshot, format: 'bundle' | 'sig', key = cosignKey) => {
    const r = await cosignOn(snapshot, format, key);
    assert.notEqual(r.code, 0, `cosign accepted it (${format}):\n${r.stdout}`);
    assert.match(r.stderr, COSIGN_REJECTED);
  };

  before(async () => {
    registry = await startRegistry();
    work = await makeTempDir('tamper-work');
    hello = await pushSpec(registry, 'tamper/hello', '1', { ...wasiAppImage('tamper\n'), architecture: hostPlatform().architecture });
    proxy = await startBoxProxy({ registry });
    converted = await convertThrough(proxy, `${registry.host}/tamper/hello:1`, hello.digest);
    assert.equal(converted.state, 'done', JSON.stringify(converted));
    boxDigest = converted.box as string;
    [publicKey] = (await parsePublicKeys(await (await fetch(`${proxy.url}/boxproxy/v1/signing-key`)).text())) as [VerificationKey];
    original = await snapshotFromProxy(proxy, boxDigest);
    fake = await startSnapshotRegistry(state);
    cosignKey = join(work, 'cosign.pub');
    await writeFile(cosignKey, publicKey.pem);
  });

  after(async () => {
    await fake?.close();
    await proxy?.stop();
    await registry?.stop();
    if (work) await removeTempDir(work);
    if (hello) await removeTempDir(hello.layout);
  });

  test('the untouched copy verifies (both formats), by tag and by digest', async () => {
    for (const reference of [`${fake.host}/${REPO}:1`, `${fake.host}/${REPO}@${boxDigest}`]) {
      const result = await verify(original, [publicKey], reference);
      assert.ok(result.ok, result.reasons.join('; '));
      assert.deepEqual(result.verified, ['cosign', 'bundle']);
    }
    assert.deepEqual((await cosignOn(original, 'bundle')).verified, [{ digest: boxDigest, type: COSIGN_VERIFIED_BUNDLE }], 'cosign verifies the bundle');
    assert.deepEqual((await cosignOn(original, 'sig')).verified, [{ digest: boxDigest, type: COSIGN_VERIFIED_SIG }], 'cosign verifies the .sig');
  });

  test('a tampered payload fails', async () => {
    const s = cloneSnapshot(original);
    rewriteSig(s, boxDigest, (m) => {
      const layer = m.layers[0] as ImageManifest['layers'][number];
      const payload = (s.blobs.get(layer.digest) as Buffer).toString().replace(/"docker-reference":"[^"]*"/, '"docker-reference":"evil.example/tamper/hello"');
      const bytes = Buffer.from(payload);
      layer.digest = sha256(bytes);
      layer.size = bytes.length;
      s.blobs.set(layer.digest, bytes);
    });
    const result = await verify(s);
    assert.equal(result.ok, false);
    assert.match(result.reasons.join('; '), /cosign: signature on payload .* does not verify/);
    await cosignRejects(s, 'sig');
  });

  test('a payload changed without updating its descriptor fails on the digest', async () => {
    const s = cloneSnapshot(original);
    const sig = JSON.parse((s.manifests.get(`sha256-${hexOf(boxDigest)}.sig`) as Item).bytes.toString()) as ImageManifest;
    const layer = sig.layers[0] as ImageManifest['layers'][number];
    const payload = s.blobs.get(layer.digest) as Buffer;
    s.blobs.set(layer.digest, Buffer.from(payload.toString().replace('cosign container image signature', 'cosign container image signaturE')));
    const result = await verify(s);
    assert.equal(result.ok, false);
    assert.match(result.reasons.join('; '), /digest mismatch/);
    await cosignRejects(s, 'sig');
  });

  test('a swapped signature (a valid signature by the same key over other bytes) fails', async () => {
    const s = cloneSnapshot(original);
    // The bundle's DSSE signature is made by the proxy's key, over the PAE rather than the payload.
    const bundleRef = (s.referrers.get(boxDigest) as ImageIndex).manifests.find((d) => d.artifactType === BUNDLE_V03_MEDIA_TYPE);
    assert.ok(bundleRef);
    const bundleManifest = JSON.parse((s.manifests.get(bundleRef.digest) as Item).bytes.toString()) as ImageManifest;
    const bundle = JSON.parse((s.blobs.get((bundleManifest.layers[0] as { digest: string }).digest) as Buffer).toString()) as {
      dsseEnvelope: { signatures: Array<{ sig: string }> };
    };
    const dsseSig = bundle.dsseEnvelope.signatures[0]?.sig as string;
    rewriteSig(s, boxDigest, (m) => {
      (m.layers[0] as { annotations: Record<string, string> }).annotations[COSIGN_SIGNATURE_ANNOTATION] = dsseSig;
    });
    const result = await verify(s);
    assert.equal(result.ok, false);
    assert.match(result.reasons.join('; '), /cosign: signature on payload .* does not verify/);
    await cosignRejects(s, 'sig');
  });

  test("another manifest's valid signature under this Box's .sig tag fails (the signed digest is not the Box's)", async () => {
    const key = await loadPrivateKey(join(proxy.storagePath, 'keys', 'signing.pem'));
    // A genuine signature by the proxy's key, but of the linux image.
    const foreign = await signManifest(key, { reference: `${registry.host}/tamper/hello`, descriptor: { mediaType: OCI_MANIFEST, digest: hello.digest, size: 1 } });
    const s = cloneSnapshot(original);
    s.manifests.set(`sha256-${hexOf(boxDigest)}.sig`, { mediaType: OCI_MANIFEST, bytes: foreign.cosign.manifest.bytes });
    for (const b of foreign.cosign.blobs) s.blobs.set(b.digest, b.bytes);
    const result = await verify(s);
    assert.equal(result.ok, false);
    assert.match(result.reasons.join('; '), new RegExp(`payload signs ${hello.digest}, not the expected manifest ${boxDigest}`));
    await cosignRejects(s, 'sig');
  });

  test('a tampered bundle fails even with an intact cosign signature', async () => {
    const s = cloneSnapshot(original);
    const index = s.referrers.get(boxDigest) as ImageIndex;
    const entry = index.manifests.find((d) => d.artifactType === BUNDLE_V03_MEDIA_TYPE);
    assert.ok(entry);
    const manifest = JSON.parse((s.manifests.get(entry.digest) as Item).bytes.toString()) as ImageManifest;
    const layer = manifest.layers[0] as ImageManifest['layers'][number];
    const bundle = JSON.parse((s.blobs.get(layer.digest) as Buffer).toString()) as { dsseEnvelope: { payload: string } };
    const statement = Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString().replace('"predicate":{}', '"predicate":{"x":1}');
    bundle.dsseEnvelope.payload = Buffer.from(statement).toString('base64');
    const bytes = Buffer.from(JSON.stringify(bundle));
    layer.digest = sha256(bytes);
    layer.size = bytes.length;
    s.blobs.set(layer.digest, bytes);
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    s.manifests.set(sha256(manifestBytes), { mediaType: OCI_MANIFEST, bytes: manifestBytes });
    s.referrers.set(boxDigest, { ...index, manifests: index.manifests.map((d) => (d.digest === entry.digest ? { ...d, digest: sha256(manifestBytes), size: manifestBytes.length } : d)) });
    const result = await verify(s);
    assert.equal(result.ok, false);
    assert.match(result.reasons.join('; '), /bundle: DSSE signature does not verify/);
    await cosignRejects(s, 'bundle');
  });

  test('an altered Box manifest fails: its digest has no signature, and by the old digest the bytes do not match', async () => {
    const s = cloneSnapshot(original);
    const manifest = JSON.parse((s.manifests.get('1') as Item).bytes.toString()) as ImageManifest;
    manifest.annotations = { ...manifest.annotations, 'org.opencontainers.image.title': 'altered' };
    const bytes = Buffer.from(JSON.stringify(manifest));
    s.manifests.set('1', { mediaType: OCI_MANIFEST, bytes });
    s.manifests.set(sha256(bytes), { mediaType: OCI_MANIFEST, bytes });
    const byTag = await verify(s);
    assert.equal(byTag.ok, false);
    assert.equal(byTag.boxDigest, sha256(bytes));
    assert.match(byTag.reasons.join('; '), /manifest is not signed/);
    await cosignRejects(s, 'bundle');
    await cosignRejects(s, 'sig');

    s.manifests.set(boxDigest, { mediaType: OCI_MANIFEST, bytes });
    const byDigest = await verify(s, [publicKey], `${fake.host}/${REPO}@${boxDigest}`);
    assert.equal(byDigest.ok, false);
    assert.match(byDigest.reasons.join('; '), /hashes to/);
  });

  test('a wrong key fails; the CLI exits 1 with the reason, and 0 for the untouched copy', async () => {
    const other = await generateKeyPair();
    const result = await verify(original, [other.publicKey]);
    assert.equal(result.ok, false);
    assert.match(result.reasons.join('; '), /does not verify with any trusted key|untrusted key/);
    const otherCosignKey = join(work, 'cosign-other.pub');
    await writeFile(otherCosignKey, other.publicKey.pem);
    await cosignRejects(original, 'bundle', otherCosignKey);
    await cosignRejects(original, 'sig', otherCosignKey);

    state.snapshot = original;
    const pubFile = join(work, 'pub.pem');
    const otherFile = join(work, 'other.pem');
    await writeFile(pubFile, publicKey.pem);
    await writeFile(otherFile, other.publicKey.pem);
    const good = await boxproxyCli(['verify', `${fake.host}/${REPO}:1`, '--key', pubFile]);
    assert.equal(good.code, 0, good.stderr);
    const bad = await boxproxyCli(['verify', `${fake.host}/${REPO}:1`, '--key', otherFile]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /verification FAILED: .*(does not verify with any trusted key|untrusted key)/);
    // Trusting both keys (a rotation) accepts the Box again.
    const both = await boxproxyCli(['verify', `${fake.host}/${REPO}:1`, '--key', otherFile, '--key', pubFile]);
    assert.equal(both.code, 0, both.stderr);
  });

  test('`boxproxy run --key` runs the verified Box and refuses tampered, altered or foreign-signed ones', async () => {
    const pubFile = join(work, 'run-pub.pem');
    await writeFile(pubFile, publicKey.pem);
    const ref = `${fake.host}/${REPO}:1`;
    const cache = ['--cache', join(work, 'run-cache')];

    state.snapshot = original;
    const good = await boxproxyRun([ref, '--key', pubFile, ...cache, '--', 'cat:/etc/greeting']);
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /^\/etc\/greeting: tamper$/m);
    await assertPulledBoxRunsAlikeInEngines(ref, { args: ['cat:/etc/greeting'] }, good);

    const tampered = cloneSnapshot(original);
    rewriteSig(tampered, boxDigest, (m) => {
      (m.layers[0] as { annotations: Record<string, string> }).annotations[COSIGN_SIGNATURE_ANNOTATION] = Buffer.alloc(70, 1).toString('base64');
    });
    state.snapshot = tampered;
    const refused = await boxproxyRun([ref, '--key', pubFile, ...cache]);
    assert.equal(refused.code, 125);
    assert.match(refused.stderr, /refusing to run .*signature verification failed/);
    assert.equal(refused.stdout, '', 'nothing ran');

    const altered = cloneSnapshot(original);
    const manifest = JSON.parse((altered.manifests.get('1') as Item).bytes.toString()) as ImageManifest;
    manifest.annotations = { ...manifest.annotations, altered: 'yes' };
    const alteredBytes = Buffer.from(JSON.stringify(manifest));
    altered.manifests.set('1', { mediaType: OCI_MANIFEST, bytes: alteredBytes });
    altered.manifests.set(sha256(alteredBytes), { mediaType: OCI_MANIFEST, bytes: alteredBytes });
    state.snapshot = altered;
    const unsigned = await boxproxyRun([ref, '--key', pubFile, ...cache]);
    assert.equal(unsigned.code, 125);
    assert.match(unsigned.stderr, /manifest is not signed/);

    state.snapshot = original;
    const other = await generateKeyPair();
    const otherFile = join(work, 'run-other.pem');
    await writeFile(otherFile, other.publicKey.pem);
    const foreign = await boxproxyRun([ref, ...cache], { BOXPROXY_KEY: otherFile });
    assert.equal(foreign.code, 125, 'BOXPROXY_KEY turns verification on');
    state.snapshot = tampered;
    const skipped = await boxproxyRun([ref, '--key', pubFile, '--insecure-skip-verify', ...cache, '--', 'exit:3']);
    assert.equal(skipped.code, 3, `--insecure-skip-verify runs it anyway: ${skipped.stderr}`);
  });
});
