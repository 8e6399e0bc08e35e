import { Crypto } from '@peculiar/webcrypto';
import { derToRaw, rawToDer } from './der.js';

// One WebCrypto provider for the whole signing module: @peculiar/webcrypto
// behaves the same on every Node version we support.
export const webcrypto = new Crypto();

export const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** WebCrypto takes ArrayBuffer-backed views only; Buffers may sit on a shared pool, so copy. */
export function bufferSource(data: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(data);
}

/** ECDSA P-256 / SHA-256 over `data`; returns the ASN.1 DER signature that cosign, DSSE and openssl expect. */
export async function signDer(privateKey: CryptoKey, data: Uint8Array): Promise<Buffer> {
  const raw = await webcrypto.subtle.sign(ECDSA_SHA256, privateKey, bufferSource(data));
  return rawToDer(new Uint8Array(raw));
}

/** True when `der` is a valid signature of `data` by `publicKey`; malformed signatures are simply invalid. */
export async function verifyDer(publicKey: CryptoKey, data: Uint8Array, der: Uint8Array): Promise<boolean> {
  let raw: Buffer;
  try {
    raw = derToRaw(der);
  } catch {
    return false;
  }
  return webcrypto.subtle.verify(ECDSA_SHA256, publicKey, bufferSource(raw), bufferSource(data));
}
