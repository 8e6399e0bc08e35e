import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { link, mkdir, open, readFile, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { inspect } from 'node:util';
import { ECDSA_P256, bufferSource, signDer, webcrypto } from './ecdsa.js';

/** A public key trusted for verification, with the identifiers verifiers need. */
export interface VerificationKey {
  /** WebCrypto ECDSA P-256 public key (usage: verify). */
  readonly key: CryptoKey;
  /** SubjectPublicKeyInfo DER. */
  readonly spki: Buffer;
  /** SPKI PEM, 64-character lines. */
  readonly pem: string;
  /** Hex sha256 of the SPKI DER: what logs and `boxproxy key` show. */
  readonly fingerprint: string;
  /** Standard base64 of sha256(SPKI DER): the sigstore bundle `publicKey.hint`, as cosign computes it. */
  readonly hint: string;
}

export type KeyFileErrorCode = 'EXISTS' | 'NOT_FOUND' | 'INSECURE_PERMISSIONS' | 'INVALID_KEY' | 'NOT_EXPORTABLE';

export class KeyFileError extends Error {
  constructor(
    readonly code: KeyFileErrorCode,
    readonly path: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'KeyFileError';
  }
}

// The private CryptoKey lives only here, keyed by its SigningKey, so no property
// walk (JSON.stringify, a logger, util.inspect) can ever reach it.
const privateKeys = new WeakMap<SigningKey, CryptoKey>();

/** The proxy's signing key. Serializes to its fingerprint only. */
export class SigningKey {
  private constructor(readonly publicKey: VerificationKey) {}

  /** @internal Only keys.ts constructs keys: through generateKeyPair or loadPrivateKey. */
  static fromParts(privateKey: CryptoKey, publicKey: VerificationKey): SigningKey {
    const key = new SigningKey(publicKey);
    privateKeys.set(key, privateKey);
    return key;
  }

  get fingerprint(): string {
    return this.publicKey.fingerprint;
  }

  /** ECDSA P-256 / SHA-256 signature of `data`, ASN.1 DER encoded. */
  sign(data: Uint8Array): Promise<Buffer> {
    return signDer(privateOf(this), data);
  }

  toJSON(): { fingerprint: string } {
    return { fingerprint: this.fingerprint };
  }

  [inspect.custom](): string {
    return `SigningKey { fingerprint: '${this.fingerprint}' }`;
  }
}

function privateOf(key: SigningKey): CryptoKey {
  const privateKey = privateKeys.get(key);
  if (!privateKey) throw new Error('SigningKey has no private key (not created by keys.ts)');
  return privateKey;
}

// ---- PEM ----

function toPem(label: string, der: Uint8Array): string {
  const lines = Buffer.from(der).toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** DER contents of every PEM block labelled `label` in `text`. */
function pemBlocks(text: string, label: string): Buffer[] {
  const re = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]*?)-----END ${label}-----`, 'g');
  return [...text.matchAll(re)].map((m) => Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64'));
}

function pemLabels(text: string): string[] {
  return [...text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----/g)].map((m) => m[1] ?? '');
}

// ---- public keys ----

async function verificationKeyFromSpki(spki: Buffer, source: string): Promise<VerificationKey> {
  let key: CryptoKey;
  try {
    key = await webcrypto.subtle.importKey('spki', bufferSource(spki), ECDSA_P256, true, ['verify']);
  } catch (err) {
    throw new KeyFileError('INVALID_KEY', undefined, `${source}: not an ECDSA P-256 public key (${(err as Error).message})`);
  }
  // Re-export so the PEM and digests are of the canonical encoding, whatever the input's formatting.
  const canonical = Buffer.from(await webcrypto.subtle.exportKey('spki', key));
  const digest = createHash('sha256').update(canonical).digest();
  return {
    key,
    spki: canonical,
    pem: toPem('PUBLIC KEY', canonical),
    fingerprint: digest.toString('hex'),
    hint: digest.toString('base64'),
  };
}

/** SPKI PEM (64-character lines) of a key's public half. */
export async function publicKeyPem(key: SigningKey | VerificationKey | CryptoKey): Promise<string> {
  if (key instanceof SigningKey) return key.publicKey.pem;
  if ('pem' in key) return key.pem;
  return toPem('PUBLIC KEY', new Uint8Array(await webcrypto.subtle.exportKey('spki', key)));
}

/** Hex sha256 of the public key's SPKI DER. */
export async function fingerprint(publicKey: CryptoKey | VerificationKey | SigningKey): Promise<string> {
  if (publicKey instanceof SigningKey) return publicKey.fingerprint;
  if ('fingerprint' in publicKey) return publicKey.fingerprint;
  if (publicKey.type !== 'public') throw new Error('fingerprint() takes a public key');
  const spki = Buffer.from(await webcrypto.subtle.exportKey('spki', publicKey));
  return createHash('sha256').update(spki).digest('hex');
}

/** Parses every `PUBLIC KEY` PEM block in `pem` (e.g. a key file holding current and older keys). */
export async function parsePublicKeys(pem: string, source = 'public key'): Promise<VerificationKey[]> {
  const blocks = pemBlocks(pem, 'PUBLIC KEY');
  if (blocks.length === 0) {
    const labels = pemLabels(pem);
    const found = labels.length ? `found ${labels.join(', ')}` : 'no PEM block found';
    throw new KeyFileError('INVALID_KEY', undefined, `${source}: expected a "PUBLIC KEY" PEM block (${found})`);
  }
  return Promise.all(blocks.map((der) => verificationKeyFromSpki(der, source)));
}

/**
 * Trusted public keys from a mix of file paths and inline PEM text (an entry
 * containing "-----BEGIN" is PEM). Duplicates are dropped.
 */
export async function loadPublicKeys(sources: readonly string[]): Promise<VerificationKey[]> {
  const keys: VerificationKey[] = [];
  for (const source of sources) {
    let text: string;
    let label: string;
    if (source.includes('-----BEGIN')) {
      text = source;
      label = 'inline public key';
    } else {
      label = source;
      try {
        text = await readFile(source, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          throw new KeyFileError('NOT_FOUND', source, `public key file ${source} does not exist`);
        }
        throw err;
      }
    }
    for (const key of await parsePublicKeys(text, label)) {
      if (!keys.some((k) => k.fingerprint === key.fingerprint)) keys.push(key);
    }
  }
  return keys;
}

// ---- private keys ----

/** A fresh ECDSA P-256 key pair. The private key is extractable so it can be saved once. */
export async function generateKeyPair(): Promise<SigningKey> {
  const pair = await webcrypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']);
  const spki = Buffer.from(await webcrypto.subtle.exportKey('spki', pair.publicKey));
  return SigningKey.fromParts(pair.privateKey, await verificationKeyFromSpki(spki, 'generated key'));
}

export interface SaveOptions {
  /** Replace an existing file (atomically). Default false: an existing file is an error. */
  overwrite?: boolean;
}

/**
 * Writes the private key as PKCS#8 PEM with mode 0600. The file appears
 * atomically (written to a temporary file in the same directory, then linked
 * or renamed into place), so a crash never leaves a truncated key behind and,
 * without `overwrite`, an existing key is never replaced even by a concurrent writer.
 */
export async function savePrivateKey(key: SigningKey, path: string, options: SaveOptions = {}): Promise<void> {
  let pkcs8: ArrayBuffer;
  try {
    pkcs8 = await webcrypto.subtle.exportKey('pkcs8', privateOf(key));
  } catch {
    throw new KeyFileError('NOT_EXPORTABLE', path, 'this signing key was loaded from a file and is not exportable');
  }
  const pem = toPem('PRIVATE KEY', new Uint8Array(pkcs8));
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
  try {
    try {
      await handle.chmod(0o600); // in case the umask removed the owner's read bit
      await handle.writeFile(pem);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (options.overwrite) {
      await rename(tmp, path);
    } else {
      try {
        await link(tmp, path); // fails with EEXIST instead of replacing
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new KeyFileError('EXISTS', path, `key file ${path} already exists; refusing to overwrite it`);
        }
        throw err;
      }
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  await syncDirectory(dir);
}

async function syncDirectory(dir: string): Promise<void> {
  // Makes the new directory entry durable; not possible on every platform, so best effort.
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    /* best effort */
  }
}

export interface LoadOptions {
  /**
   * Accept a key file that others can write or everyone can read (downgraded to
   * a warning). For mounts that cannot set 0600; prefer fixing the mode.
   */
  allowInsecurePermissions?: boolean;
  /** Receives non-fatal findings, e.g. a group-readable key file. */
  warn?: (message: string) => void;
}

/**
 * Permission policy (POSIX only): group/world-writable or world-readable key
 * files are refused, because whoever can replace the key can sign as the
 * proxy and whoever can read it can forge signatures; group-readable is a
 * warning, since secret mounts commonly share a key with the service's group.
 */
function checkPermissions(path: string, mode: number, options: LoadOptions): void {
  if (process.platform === 'win32') return;
  const perms = (mode & 0o777).toString(8).padStart(4, '0');
  if (mode & 0o026) {
    const message = `key file ${path} has mode ${perms}: writable by others or readable by everyone; run chmod 600 ${path}`;
    if (!options.allowInsecurePermissions) throw new KeyFileError('INSECURE_PERMISSIONS', path, message);
    options.warn?.(message);
  } else if (mode & 0o050) {
    options.warn?.(`key file ${path} has mode ${perms}: readable by its group; 0600 is recommended`);
  }
}

async function signingKeyFromPkcs8(pkcs8: Buffer, path: string): Promise<SigningKey> {
  let jwk: JsonWebKey;
  try {
    // Extractable only transiently, to derive the public half via JWK (WebCrypto has no direct way).
    const extractable = await webcrypto.subtle.importKey('pkcs8', bufferSource(pkcs8), ECDSA_P256, true, ['sign']);
    jwk = await webcrypto.subtle.exportKey('jwk', extractable);
  } catch (err) {
    throw new KeyFileError('INVALID_KEY', path, `${path}: not an ECDSA P-256 PKCS#8 private key (${(err as Error).message})`);
  }
  const publicJwk: JsonWebKey = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
  const publicKey = await webcrypto.subtle.importKey('jwk', publicJwk, ECDSA_P256, true, ['verify']);
  const spki = Buffer.from(await webcrypto.subtle.exportKey('spki', publicKey));
  const privateKey = await webcrypto.subtle.importKey('pkcs8', bufferSource(pkcs8), ECDSA_P256, false, ['sign']);
  return SigningKey.fromParts(privateKey, await verificationKeyFromSpki(spki, path));
}

/** Loads a PKCS#8 PEM ECDSA P-256 private key; see checkPermissions for the file-mode policy. */
export async function loadPrivateKey(path: string, options: LoadOptions = {}): Promise<SigningKey> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new KeyFileError('NOT_FOUND', path, `key file ${path} does not exist`);
    }
    throw err;
  }
  let text: string;
  try {
    // Check the opened file itself, not the path, so a swap between check and read is caught.
    const stat = await handle.stat();
    if (!stat.isFile()) throw new KeyFileError('INVALID_KEY', path, `${path} is not a regular file`);
    checkPermissions(path, stat.mode, options);
    text = await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
  const blocks = pemBlocks(text, 'PRIVATE KEY');
  if (blocks.length !== 1 || !blocks[0]) {
    const labels = pemLabels(text);
    const found = labels.length ? `found ${labels.join(', ')}` : 'no PEM block found';
    throw new KeyFileError('INVALID_KEY', path, `${path}: expected exactly one unencrypted "PRIVATE KEY" (PKCS#8) PEM block (${found})`);
  }
  return signingKeyFromPkcs8(blocks[0], path);
}

/** Loads the key at `path`, generating and saving one (mode 0600) when the file does not exist. */
export async function loadOrCreateKey(path: string, options: LoadOptions = {}): Promise<{ key: SigningKey; created: boolean }> {
  try {
    return { key: await loadPrivateKey(path, options), created: false };
  } catch (err) {
    if (!(err instanceof KeyFileError && err.code === 'NOT_FOUND')) throw err;
  }
  const key = await generateKeyPair();
  try {
    await savePrivateKey(key, path);
  } catch (err) {
    // Another process created it first: use theirs so both sign with the same key.
    if (err instanceof KeyFileError && err.code === 'EXISTS') {
      return { key: await loadPrivateKey(path, options), created: false };
    }
    throw err;
  }
  return { key, created: true };
}
