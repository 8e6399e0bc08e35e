// `boxproxy keygen`, `boxproxy key` and `boxproxy resign` as a user runs them (the CLI in a child process),
// plus resignBoxes on a storage directory holding a signed Box record.
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify as toYaml } from 'yaml';
import { resignBoxes } from '../../src/cli/commands/resign.js';
import { sha256 } from '../../src/oci/digest.js';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { silentLogger } from '../../src/ops/log.js';
import { verifyCosign } from '../../src/sign/cosign.js';
import { generateKeyPair, loadPrivateKey, savePrivateKey, type SigningKey } from '../../src/sign/keys.js';
import { signManifest } from '../../src/sign/signer.js';
import { BlobStore } from '../../src/store/blobs.js';
import { ConversionStore, type ConversionRecord } from '../../src/store/conversions.js';
import { makeTempDir, removeTempDir } from '../helpers/proc.js';
import { boxproxyCli } from '../integration/boxes-helpers.js';

const BOX_BYTES = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, note: 'a stand-in Box manifest' }));
const BOX = { mediaType: OCI_MANIFEST, digest: sha256(BOX_BYTES), size: BOX_BYTES.length };

/** A storage dir with one done conversion whose Box is signed by `key`, as ConversionService leaves it. */
async function storageWithSignedBox(root: string, key: SigningKey): Promise<ConversionRecord> {
  const store = new BlobStore(root, { logger: silentLogger() });
  await store.init();
  const records = new ConversionStore(root);
  await records.init();
  await store.putBuffer(BOX.digest, BOX_BYTES);
  const sigs = await signManifest(key, { reference: 'upstream.test/app', descriptor: BOX });
  for (const b of [...sigs.cosign.blobs, ...sigs.bundle.blobs]) await store.putBuffer(b.digest, b.bytes);
  await store.putBuffer(sigs.cosign.manifest.digest, sigs.cosign.manifest.bytes);
  await store.putBuffer(sigs.bundle.manifest.digest, sigs.bundle.manifest.bytes);
  const rec: ConversionRecord = {
    sourceDigest: `sha256:${'5'.repeat(64)}`,
    upstream: 'upstream.test',
    repository: 'app',
    state: 'done',
    converterVersion: '0.1.0',
    createdAt: 1,
    updatedAt: 1,
    attempts: 1,
    box: {
      descriptor: BOX,
      strategy: 'wasi-module',
      blobs: [...sigs.cosign.blobs, ...sigs.bundle.blobs].map((b) => b.digest),
      manifests: [
        { digest: BOX.digest, mediaType: OCI_MANIFEST },
        { digest: sigs.cosign.manifest.digest, mediaType: OCI_MANIFEST },
        { digest: sigs.bundle.manifest.digest, mediaType: OCI_MANIFEST },
      ],
      signatures: { cosign: { tag: sigs.cosign.tag, descriptor: sigs.cosign.descriptor }, bundle: { descriptor: sigs.bundle.descriptor } },
    },
  };
  await records.put(rec);
  return rec;
}

async function cosignVerifiesWith(root: string, rec: ConversionRecord, key: SigningKey): Promise<boolean> {
  const store = new BlobStore(root, { logger: silentLogger() });
  const read = (d: string) => readFile(store.pathOf(d)).catch(() => undefined);
  const manifest = await read(rec.box?.signatures.cosign.descriptor.digest ?? '');
  assert.ok(manifest, 'the .sig manifest is stored');
  return (await verifyCosign(manifest, read, [key.publicKey], BOX.digest)).ok;
}

describe('boxproxy keygen / key / resign', () => {
  let dir: string;
  before(async () => {
    dir = await makeTempDir('cli-signing');
  });
  after(async () => {
    await removeTempDir(dir);
  });

  it('keygen writes a 0600 PKCS#8 key, prints its public key, and refuses to overwrite without --force', async () => {
    const keyFile = join(dir, 'keys', 'signing.pem');
    const made = await boxproxyCli(['keygen', '--out', keyFile]);
    assert.equal(made.code, 0, made.stderr);
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
    assert.match(await readFile(keyFile, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
    const key = await loadPrivateKey(keyFile);
    assert.equal(made.stdout, key.publicKey.pem);
    assert.match(made.stderr, new RegExp(key.fingerprint));
    assert.doesNotMatch(made.stdout + made.stderr, /PRIVATE/);

    const again = await boxproxyCli(['keygen', '--out', keyFile]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists.*--force/);
    assert.equal((await loadPrivateKey(keyFile)).fingerprint, key.fingerprint, 'the key is unchanged');

    const forced = await boxproxyCli(['keygen', '--out', keyFile, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.notEqual((await loadPrivateKey(keyFile)).fingerprint, key.fingerprint);
  });

  it('key prints the configured key\'s public PEM (or fingerprint), and says how to get one when there is none', async () => {
    const keyFile = join(dir, 'key-cmd.pem');
    const key = await generateKeyPair();
    await savePrivateKey(key, keyFile);
    const config = join(dir, 'key-cmd.yaml');
    await writeFile(config, toYaml({ storage: { path: join(dir, 'storage-key') }, upstreams: [{ name: 'upstream.test', url: 'http://127.0.0.1:9' }], signing: { keyPath: 'key-cmd.pem' } }));
    const printed = await boxproxyCli(['key', '--config', config]);
    assert.equal(printed.code, 0, printed.stderr);
    assert.equal(printed.stdout, key.publicKey.pem);
    const fp = await boxproxyCli(['key', '--fingerprint'], { BOXPROXY_CONFIG: config });
    assert.equal(fp.stdout.trim(), key.fingerprint);

    const missing = join(dir, 'no-key.yaml');
    await writeFile(missing, toYaml({ storage: { path: join(dir, 'storage-none') }, upstreams: [{ name: 'upstream.test', url: 'http://127.0.0.1:9' }] }));
    const none = await boxproxyCli(['key', '--config', missing]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no signing key at .*storage-none\/keys\/signing\.pem.*keygen/);
  });

  it('resignBoxes signs stored Boxes with the new key once, keeps the Box, and leaves current ones alone', async () => {
    const root = join(dir, 'storage-resign');
    const oldKey = await generateKeyPair();
    const newKey = await generateKeyPair();
    const before = await storageWithSignedBox(root, oldKey);
    assert.equal(await cosignVerifiesWith(root, before, oldKey), true);

    const first = await resignBoxes({ storageRoot: root, key: newKey });
    assert.deepEqual(first, { resigned: [BOX.digest], current: [] });
    const records = new ConversionStore(root);
    await records.init();
    const after1 = records.get(before.sourceDigest) as ConversionRecord;
    assert.deepEqual(after1.box?.descriptor, BOX, 'the Box is the same');
    assert.notEqual(after1.box?.signatures.cosign.descriptor.digest, before.box?.signatures.cosign.descriptor.digest);
    assert.notEqual(after1.box?.signatures.bundle.descriptor.digest, before.box?.signatures.bundle.descriptor.digest);
    assert.equal(await cosignVerifiesWith(root, after1, newKey), true);
    assert.equal(await cosignVerifiesWith(root, after1, oldKey), false);
    assert.ok(after1.box?.manifests.some((m) => m.digest === after1.box?.signatures.bundle.descriptor.digest), 'new bundle manifest servable');
    assert.ok(!after1.box?.manifests.some((m) => m.digest === before.box?.signatures.cosign.descriptor.digest), 'old .sig manifest no longer listed');

    const second = await resignBoxes({ storageRoot: root, key: newKey });
    assert.deepEqual(second, { resigned: [], current: [BOX.digest] }, 'signatures are not remade needlessly');
    const forced = await resignBoxes({ storageRoot: root, key: newKey, force: true });
    assert.deepEqual(forced.resigned, [BOX.digest]);
  });

  it('`boxproxy resign --config` re-signs with the configured key', async () => {
    const root = join(dir, 'storage-resign-cli');
    const oldKey = await generateKeyPair();
    const rec = await storageWithSignedBox(root, oldKey);
    const config = join(dir, 'resign.yaml');
    await writeFile(config, toYaml({ storage: { path: root }, upstreams: [{ name: 'upstream.test', url: 'http://127.0.0.1:9' }] }));
    const keygen = await boxproxyCli(['keygen', '--config', config]);
    assert.equal(keygen.code, 0, keygen.stderr);
    const res = await boxproxyCli(['resign', '--config', config]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /1 Box\(es\) re-signed/);
    const newKey = await loadPrivateKey(join(root, 'keys', 'signing.pem'));
    const records = new ConversionStore(root);
    await records.init();
    assert.equal(await cosignVerifiesWith(root, records.get(rec.sourceDigest) as ConversionRecord, newKey), true);
  });
});
