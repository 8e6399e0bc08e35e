import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify as nodeVerify } from 'node:crypto';
import { chmod, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import {
  KeyFileError,
  fingerprint,
  generateKeyPair,
  loadOrCreateKey,
  loadPrivateKey,
  loadPublicKeys,
  publicKeyPem,
  savePrivateKey,
} from '../../src/sign/keys.js';
import { openssl, tempDir } from './helpers.js';

function isKeyError(code: string): (err: unknown) => boolean {
  return (err) => err instanceof KeyFileError && err.code === code;
}

describe('private key files', () => {
  it('saves PKCS#8 PEM with mode 0600 and loads back the same key', async () => {
    const dir = await tempDir();
    const path = join(dir, 'nested', 'signing.pem');
    const key = await generateKeyPair();
    await savePrivateKey(key, path);

    assert.equal((await stat(path)).mode & 0o777, 0o600);
    const text = await readFile(path, 'utf8');
    assert.match(text, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.match(text, /-----END PRIVATE KEY-----\n$/);
    // No temporary files left next to the key.
    assert.deepEqual(await readdir(join(dir, 'nested')), ['signing.pem']);

    const loaded = await loadPrivateKey(path);
    assert.equal(loaded.fingerprint, key.fingerprint);
    assert.equal(await publicKeyPem(loaded), await publicKeyPem(key));

    // The loaded key signs, and the original public key verifies it (node:crypto as independent verifier).
    const data = Buffer.from('hello');
    const sig = await loaded.sign(data);
    assert.ok(nodeVerify('sha256', data, { key: createPublicKey(key.publicKey.pem), dsaEncoding: 'der' }, sig));
  });

  it('openssl derives the same public key from the saved file', async () => {
    const dir = await tempDir();
    const path = join(dir, 'k.pem');
    const key = await generateKeyPair();
    await savePrivateKey(key, path);
    const { code, output } = await openssl(['pkey', '-in', path, '-pubout']);
    assert.equal(code, 0, output);
    assert.equal(output, key.publicKey.pem);
  });

  it('refuses to overwrite an existing key unless asked', async () => {
    const dir = await tempDir();
    const path = join(dir, 'k.pem');
    const first = await generateKeyPair();
    const second = await generateKeyPair();
    await savePrivateKey(first, path);
    const before = await readFile(path, 'utf8');
    await assert.rejects(savePrivateKey(second, path), isKeyError('EXISTS'));
    assert.equal(await readFile(path, 'utf8'), before);
    await savePrivateKey(second, path, { overwrite: true });
    assert.equal((await loadPrivateKey(path)).fingerprint, second.fingerprint);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.deepEqual(await readdir(dir), ['k.pem']);
  });

  it('a key loaded from a file cannot be re-exported', async () => {
    const dir = await tempDir();
    await savePrivateKey(await generateKeyPair(), join(dir, 'a.pem'));
    const loaded = await loadPrivateKey(join(dir, 'a.pem'));
    await assert.rejects(savePrivateKey(loaded, join(dir, 'b.pem')), isKeyError('NOT_EXPORTABLE'));
  });

  it('refuses world-readable or group-writable key files, warns on group-readable', async () => {
    const dir = await tempDir();
    const path = join(dir, 'k.pem');
    const key = await generateKeyPair();
    await savePrivateKey(key, path);

    for (const mode of [0o644, 0o604, 0o620, 0o602]) {
      await chmod(path, mode);
      await assert.rejects(loadPrivateKey(path), (err: unknown) => isKeyError('INSECURE_PERMISSIONS')(err) && /chmod 600/.test((err as Error).message));
    }
    const warnings: string[] = [];
    await chmod(path, 0o644);
    const forced = await loadPrivateKey(path, { allowInsecurePermissions: true, warn: (m) => warnings.push(m) });
    assert.equal(forced.fingerprint, key.fingerprint);
    assert.equal(warnings.length, 1);

    await chmod(path, 0o640);
    const groupWarnings: string[] = [];
    assert.equal((await loadPrivateKey(path, { warn: (m) => groupWarnings.push(m) })).fingerprint, key.fingerprint);
    assert.match(groupWarnings[0] ?? '', /readable by its group/);

    await chmod(path, 0o400);
    const none: string[] = [];
    await loadPrivateKey(path, { warn: (m) => none.push(m) });
    assert.deepEqual(none, []);
  });

  it('reports a missing file, a non-PKCS#8 file and a key on another curve', async () => {
    const dir = await tempDir();
    await assert.rejects(loadPrivateKey(join(dir, 'absent.pem')), isKeyError('NOT_FOUND'));

    const pub = join(dir, 'pub.pem');
    await writeFile(pub, (await generateKeyPair()).publicKey.pem, { mode: 0o600 });
    await assert.rejects(loadPrivateKey(pub), (err: unknown) => isKeyError('INVALID_KEY')(err) && /found PUBLIC KEY/.test((err as Error).message));

    const p384 = join(dir, 'p384.pem');
    const gen = await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-out', p384]);
    assert.equal(gen.code, 0, gen.output);
    await chmod(p384, 0o600);
    await assert.rejects(loadPrivateKey(p384), isKeyError('INVALID_KEY'));
  });

  it('loads a P-256 PKCS#8 key made by openssl, with the fingerprint openssl computes', async () => {
    const dir = await tempDir();
    const path = join(dir, 'openssl.pem');
    const gen = await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path]);
    assert.equal(gen.code, 0, gen.output);
    await chmod(path, 0o600);
    const key = await loadPrivateKey(path);
    const der = await openssl(['pkey', '-in', path, '-pubout', '-outform', 'DER', '-out', join(dir, 'pub.der')]);
    assert.equal(der.code, 0, der.output);
    const expected = createHash('sha256').update(await readFile(join(dir, 'pub.der'))).digest();
    assert.equal(key.fingerprint, expected.toString('hex'));
    assert.equal(key.publicKey.hint, expected.toString('base64'));
  });

  it('loadOrCreateKey generates once and then keeps the key, also under concurrent starts', async () => {
    const dir = await tempDir();
    const path = join(dir, 'k.pem');
    const first = await loadOrCreateKey(path);
    assert.equal(first.created, true);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    const again = await loadOrCreateKey(path);
    assert.equal(again.created, false);
    assert.equal(again.key.fingerprint, first.key.fingerprint);

    const racePath = join(dir, 'race.pem');
    const results = await Promise.all(Array.from({ length: 6 }, () => loadOrCreateKey(racePath)));
    assert.equal(new Set(results.map((r) => r.key.fingerprint)).size, 1);
    assert.equal(results.filter((r) => r.created).length, 1);
    assert.equal((await loadPrivateKey(racePath)).fingerprint, results[0]?.key.fingerprint);
  });

  it('never exposes private key material through JSON or inspect', async () => {
    const dir = await tempDir();
    const path = join(dir, 'k.pem');
    const key = await generateKeyPair();
    await savePrivateKey(key, path);
    // The private scalar as openssl prints it, in every encoding a leak could take.
    const text = (await openssl(['pkey', '-in', path, '-text', '-noout'])).output;
    const privHex = /priv:\n([\s0-9a-f:]+)\npub:/.exec(text)?.[1]?.replace(/[\s:]/g, '') ?? '';
    const scalar = Buffer.from(privHex, 'hex').subarray(-32);
    assert.equal(scalar.length, 32);
    const forms = [scalar.toString('hex'), scalar.toString('base64'), scalar.toString('base64url')];
    for (const k of [key, await loadPrivateKey(path)]) {
      const json = JSON.stringify({ key: k });
      const shown = inspect({ key: k }, { depth: 10, showHidden: true });
      assert.equal(json, JSON.stringify({ key: { fingerprint: k.fingerprint } }));
      for (const form of forms) {
        assert.equal(shown.includes(form.slice(0, 24)), false);
        assert.equal(json.includes(form.slice(0, 24)), false);
      }
      assert.match(shown, new RegExp(k.fingerprint));
    }
  });
});

describe('public keys', () => {
  it('PEM has 64-character lines and fingerprint() matches sha256 of the SPKI DER', async () => {
    const key = await generateKeyPair();
    const pem = await publicKeyPem(key);
    const lines = pem.trimEnd().split('\n');
    assert.equal(lines[0], '-----BEGIN PUBLIC KEY-----');
    assert.equal(lines.at(-1), '-----END PUBLIC KEY-----');
    for (const line of lines.slice(1, -2)) assert.equal(line.length, 64);
    const der = createPublicKey(pem).export({ type: 'spki', format: 'der' });
    const expected = createHash('sha256').update(der).digest('hex');
    assert.equal(key.fingerprint, expected);
    assert.equal(await fingerprint(key.publicKey.key), expected);
    assert.equal(await publicKeyPem(key.publicKey.key), pem);
  });

  it('loads keys from paths and inline PEM, several per file, without duplicates', async () => {
    const dir = await tempDir();
    const [a, b, c] = await Promise.all([generateKeyPair(), generateKeyPair(), generateKeyPair()]);
    const both = join(dir, 'both.pem');
    await writeFile(both, a.publicKey.pem + '\n' + b.publicKey.pem);
    const keys = await loadPublicKeys([both, c.publicKey.pem, a.publicKey.pem]);
    assert.deepEqual(
      keys.map((k) => k.fingerprint),
      [a.fingerprint, b.fingerprint, c.fingerprint],
    );
  });

  it('rejects non-P-256 public keys, private keys and missing files', async () => {
    const dir = await tempDir();
    const rsa = join(dir, 'rsa.pem');
    const gen = await openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', join(dir, 'rsa.key')]);
    assert.equal(gen.code, 0, gen.output);
    assert.equal((await openssl(['pkey', '-in', join(dir, 'rsa.key'), '-pubout', '-out', rsa])).code, 0);
    await assert.rejects(loadPublicKeys([rsa]), (err: unknown) => isKeyError('INVALID_KEY')(err) && /P-256/.test((err as Error).message));

    const priv = join(dir, 'priv.pem');
    await savePrivateKey(await generateKeyPair(), priv);
    await assert.rejects(loadPublicKeys([priv]), (err: unknown) => isKeyError('INVALID_KEY')(err) && /found PRIVATE KEY/.test((err as Error).message));
    await assert.rejects(loadPublicKeys([join(dir, 'nope.pem')]), isKeyError('NOT_FOUND'));
  });
});
