import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, randomBytes, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { describe, it } from 'node:test';
import { derToRaw, rawToDer } from '../../src/sign/der.js';
import { ECDSA_P256, webcrypto } from '../../src/sign/ecdsa.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('rawToDer / derToRaw edge cases', () => {
  it('encodes small positive halves minimally', () => {
    const raw = Buffer.alloc(64);
    raw[31] = 0x01;
    raw[63] = 0x7f;
    assert.deepEqual(rawToDer(raw), hex('3006 020101 02017f'));
  });

  it('keeps one zero byte for a zero half', () => {
    const raw = Buffer.alloc(64);
    raw[63] = 0x05;
    assert.deepEqual(rawToDer(raw), hex('3006 020100 020105'));
  });

  it('strips leading zero bytes of r and s', () => {
    const raw = Buffer.concat([Buffer.alloc(3), Buffer.alloc(29, 0x11), Buffer.alloc(1), Buffer.alloc(31, 0x22)]);
    const der = rawToDer(raw);
    assert.deepEqual(der, Buffer.concat([hex('3040 021d'), Buffer.alloc(29, 0x11), hex('021f'), Buffer.alloc(31, 0x22)]));
    assert.deepEqual(derToRaw(der), raw);
  });

  it('prefixes 0x00 when the top bit is set (72-byte maximum)', () => {
    const raw = Buffer.concat([Buffer.alloc(32, 0x80), Buffer.alloc(32, 0xff)]);
    const der = rawToDer(raw);
    assert.equal(der.length, 72);
    assert.deepEqual(der, Buffer.concat([hex('3046 022100'), Buffer.alloc(32, 0x80), hex('022100'), Buffer.alloc(32, 0xff)]));
    assert.deepEqual(derToRaw(der), raw);
  });

  it('a stripped half whose next byte has the top bit set gets the 0x00 back', () => {
    const raw = Buffer.concat([Buffer.from([0x00, 0x90]), Buffer.alloc(30, 0x01), Buffer.alloc(32, 0x01)]);
    const der = rawToDer(raw);
    assert.deepEqual(der.subarray(2, 6), hex('0220 00 90'));
    assert.deepEqual(derToRaw(der), raw);
  });

  it('rejects odd-length raw input', () => {
    assert.throws(() => rawToDer(Buffer.alloc(63)), /equal halves/);
  });

  it('rejects malformed DER', () => {
    const good = rawToDer(Buffer.concat([Buffer.alloc(32, 0x11), Buffer.alloc(32, 0x22)]));
    assert.throws(() => derToRaw(Buffer.concat([good, Buffer.from([0])])), /length/);
    assert.throws(() => derToRaw(good.subarray(0, good.length - 1)), /length/);
    assert.throws(() => derToRaw(hex('3107 020101 020101')), /SEQUENCE/);
    assert.throws(() => derToRaw(hex('3007 02020001 020101')), /non-minimal/);
    assert.throws(() => derToRaw(hex('3006 020181 020101')), /negative/);
    assert.throws(() => derToRaw(hex('3006 030101 020101')), /INTEGER/);
    assert.throws(() => derToRaw(Buffer.concat([hex('3026 0221'), Buffer.alloc(33, 0x11), hex('020101')])), /wider/);
    assert.throws(() => derToRaw(hex('3008 020101 020101 0500')), /trailing/);
    assert.throws(() => derToRaw(hex('3081 06 020101 020101')), /non-minimal DER length/);
  });
});

describe('DER conversion against node:crypto (property test)', () => {
  it('WebCrypto raw signatures converted to DER verify with dsaEncoding der, and round-trip', async () => {
    const pair = await webcrypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']);
    const spki = Buffer.from(await webcrypto.subtle.exportKey('spki', pair.publicKey));
    const publicKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    const lengths = new Set<number>();
    let shortHalves = 0;
    let paddedHalves = 0;
    const count = 3000;
    for (let i = 0; i < count; i++) {
      const data = randomBytes(1 + (i % 64));
      const raw = Buffer.from(await webcrypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, new Uint8Array(data)));
      const der = rawToDer(raw);
      assert.ok(nodeVerify('sha256', data, { key: publicKey, dsaEncoding: 'der' }, der), `signature ${i} failed: ${der.toString('hex')}`);
      assert.deepEqual(derToRaw(der), raw);
      lengths.add(der.length);
      for (const half of [raw.subarray(0, 32), raw.subarray(32)]) {
        if (half[0] === 0) shortHalves++;
        if ((half[0] ?? 0) & 0x80) paddedHalves++;
      }
    }
    // The random sample must have exercised both special cases.
    assert.ok(shortHalves > 0, 'no half with a leading zero byte was generated');
    assert.ok(paddedHalves > 0, 'no half with the top bit set was generated');
    assert.ok([...lengths].every((n) => n >= 8 && n <= 72));
  });

  it('OpenSSL DER signatures convert to raw that WebCrypto verifies, and back to identical bytes', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    const webKey = await webcrypto.subtle.importKey('spki', new Uint8Array(spki), ECDSA_P256, true, ['verify']);
    for (let i = 0; i < 1000; i++) {
      const data = randomBytes(32);
      const der = nodeSign('sha256', data, { key: privateKey, dsaEncoding: 'der' });
      const raw = derToRaw(der);
      assert.equal(raw.length, 64);
      assert.ok(await webcrypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, webKey, new Uint8Array(raw), new Uint8Array(data)));
      assert.deepEqual(rawToDer(raw), der);
    }
  });
});
