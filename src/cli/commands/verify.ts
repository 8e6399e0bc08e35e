// `boxproxy verify <ref> --key <pem>`: fetches the Box a reference names from a registry (boxproxy or any
// registry the Box and its signatures were copied to) and checks its cosign `.sig` signature and its sigstore
// bundle referrer against trusted public keys, offline (no transparency log).
import { ImageError } from '../../image/errors.js';
import { Command } from 'commander';
import { existsSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { signingKeyPath } from '../../config/load.js';
import { upstreamSchema } from '../../config/schema.js';
import { resolveBox, BoxError } from '../../box/layout.js';
import { RegistrySource, type UpstreamRequester } from '../../image/registry.js';
import { MAX_DOCUMENT_BYTES, readSmall } from '../../image/source.js';
import { hexOf } from '../../oci/digest.js';
import { IMAGE_MANIFEST_TYPES, OCI_INDEX } from '../../oci/mediatypes.js';
import type { Descriptor, ImageIndex } from '../../oci/types.js';
import { silentLogger, type Logger } from '../../ops/log.js';
import { MAX_SIGNATURE_BLOB } from '../../sign/common.js';
import { loadPrivateKey, loadPublicKeys, type VerificationKey } from '../../sign/keys.js';
import { verifyManifestSignatures, type SignatureFormat, type SignatureSource, type SignatureVerification } from '../../sign/signer.js';
import { UpstreamClient } from '../../upstream/client.js';
import { UpstreamError } from '../../upstream/types.js';
import { ImageRefError, parseRegistryRef, type RegistryRef } from './image-ref.js';
import { loadCommandConfig, reportFailure } from './key.js';

function isLoopback(host: string): boolean {
  const name = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return name === 'localhost' || name === '::1' || /^127\.\d+\.\d+\.\d+$/.test(name);
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Reads a body of at most `limit` bytes; undefined when it is longer (a verifier never buffers more). */
async function readLimited(body: Readable, limit: number): Promise<Buffer | undefined> {
  try {
    return await readSmall(body, limit, 'response');
  } catch (err) {
    if (err instanceof ImageError && err.code === 'LIMIT_EXCEEDED') return undefined;
    throw err;
  }
}

/**
 * Requests through `client`, with digest references written as registries print them: RegistrySource
 * percent-encodes the reference (`sha256%3A…`), which boxproxy's /v2 routes do not decode.
 */
function requester(client: UpstreamClient): UpstreamRequester {
  return (req) => client.request({ ...req, path: req.path.replace(/\/manifests\/sha256%3A/i, '/manifests/sha256:') });
}

/** One repository of a registry as the signature checks read it: `.sig` tags, referrers, manifests, blobs. */
class RegistrySignatureSource implements SignatureSource {
  private readonly manifests: RegistrySource;

  constructor(
    private readonly client: UpstreamClient,
    private readonly repository: string,
  ) {
    this.manifests = new RegistrySource(requester(client), repository);
  }

  async getManifestByTag(tag: string, accept = [...IMAGE_MANIFEST_TYPES].join(', ')): Promise<Buffer | undefined> {
    const res = await this.client.request({
      method: 'GET',
      path: `/v2/${this.repository}/manifests/${encodeURIComponent(tag)}`,
      repository: this.repository,
      headers: { accept },
    });
    if (res.status === 404) {
      res.body.destroy();
      return undefined;
    }
    if (res.status !== 200) {
      res.body.destroy();
      throw new UpstreamError(this.client.name, 'status', `registry answered ${res.status} for the manifest ${this.repository}:${tag}`, res.status);
    }
    return readLimited(res.body, MAX_DOCUMENT_BYTES);
  }

  async getReferrers(digest: string): Promise<Descriptor[]> {
    const res = await this.client.request({
      method: 'GET',
      path: `/v2/${this.repository}/referrers/${digest}`,
      repository: this.repository,
      headers: { accept: OCI_INDEX },
    });
    let bytes: Buffer | undefined;
    if (res.status === 200) bytes = await readLimited(res.body, MAX_DOCUMENT_BYTES);
    else {
      res.body.destroy();
      // No referrers API (e.g. distribution 2.8): the spec's fallback tag `sha256-<hex>` holds the list.
      if (res.status === 404) bytes = await this.getManifestByTag(`sha256-${hexOf(digest)}`, OCI_INDEX);
    }
    if (!bytes) return [];
    try {
      const index = JSON.parse(bytes.toString('utf8')) as ImageIndex;
      return Array.isArray(index.manifests) ? index.manifests : [];
    } catch {
      return [];
    }
  }

  async getManifest(digest: string): Promise<Buffer | undefined> {
    try {
      return (await this.manifests.getManifest(digest)).bytes;
    } catch (err) {
      if (err instanceof ImageError && err.code === 'MANIFEST_UNKNOWN') return undefined;
      throw err;
    }
  }

  getBlob = async (digest: string): Promise<Buffer | undefined> => {
    const res = await this.client.request({ method: 'GET', path: `/v2/${this.repository}/blobs/${digest}`, repository: this.repository });
    if (res.status !== 200) {
      res.body.destroy();
      return undefined;
    }
    // Digest and size are checked by the verifier (fetchVerifiedBlob), which reports a mismatch as the reason.
    return readLimited(res.body, MAX_SIGNATURE_BLOB + 1);
  };
}

export interface VerifyBoxOptions {
  reference: string;
  publicKeys: readonly VerificationKey[];
  /** Plain HTTP for any registry (loopback registries always use plain HTTP). */
  insecure?: boolean;
  /** Formats that must verify; default: at least one, and none present but invalid. */
  require?: readonly SignatureFormat[];
  logger?: Logger;
}

export interface VerifyBoxResult extends SignatureVerification {
  reference: string;
  /** The Box manifest digest the signatures were checked for (undefined when no Box was found). */
  boxDigest: string | undefined;
}

/**
 * Resolves `reference` to a Box (an index is narrowed to its wasip1/wasm entry; the manifest must be a Box) and
 * verifies its signatures. Registry and reference problems are failures with a reason, not exceptions.
 */
export async function verifyBoxReference(options: VerifyBoxOptions): Promise<VerifyBoxResult> {
  const failed = (reason: string, boxDigest?: string): VerifyBoxResult => ({
    ok: false,
    verified: [],
    reasons: [reason],
    keyFingerprints: [],
    reference: options.reference,
    boxDigest,
  });
  let ref: RegistryRef;
  try {
    ref = parseRegistryRef(options.reference);
  } catch (err) {
    if (err instanceof ImageRefError) return failed(err.message);
    throw err;
  }
  const endpoint = ref.host === 'docker.io' ? 'registry-1.docker.io' : ref.host;
  const scheme = options.insecure || isLoopback(ref.host) ? 'http' : 'https';
  const client = new UpstreamClient(upstreamSchema.parse({ name: ref.host, url: `${scheme}://${endpoint}`, retries: 1 }), options.logger ?? silentLogger());
  try {
    const source = new RegistrySource(requester(client), ref.repository, `${ref.host}/${ref.repository}`);
    let boxDigest: string;
    let manifestBytes: Buffer;
    try {
      const box = await resolveBox(source, ref.reference);
      boxDigest = box.manifestDigest;
      // Re-read by digest: RegistrySource checks the bytes against it.
      manifestBytes = (await source.getManifest(boxDigest)).bytes;
    } catch (err) {
      if (err instanceof BoxError || err instanceof ImageError || err instanceof UpstreamError) return failed(err.message);
      throw err;
    }
    const result = await verifyManifestSignatures({
      digest: boxDigest,
      manifestBytes,
      publicKeys: options.publicKeys,
      source: new RegistrySignatureSource(client, ref.repository),
      ...(options.require ? { require: options.require } : {}),
    });
    return { ...result, reference: options.reference, boxDigest };
  } catch (err) {
    if (err instanceof UpstreamError) return failed(err.message);
    throw err;
  } finally {
    await client.close();
  }
}

/**
 * Trusted keys from --key values (files or inline PEM), plus, with --config, the configured signing key's public
 * half and signing.trustedPublicKeys; $BOXPROXY_KEY when neither is given.
 */
export async function trustedKeys(keys: readonly string[], configFile: string | undefined): Promise<VerificationKey[]> {
  const sources = [...keys];
  const found: VerificationKey[] = [];
  if (configFile !== undefined) {
    const config = loadCommandConfig(configFile);
    const path = signingKeyPath(config);
    if (existsSync(path)) found.push((await loadPrivateKey(path, { allowInsecurePermissions: true })).publicKey);
    sources.push(...config.signing.trustedPublicKeys);
  }
  if (sources.length === 0 && found.length === 0 && process.env.BOXPROXY_KEY) sources.push(process.env.BOXPROXY_KEY);
  for (const key of await loadPublicKeys(sources)) if (!found.some((k) => k.fingerprint === key.fingerprint)) found.push(key);
  return found;
}

const FORMATS: readonly SignatureFormat[] = ['cosign', 'bundle'];

function parseFormats(value: string): SignatureFormat[] {
  const formats = value.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = formats.filter((f) => !(FORMATS as readonly string[]).includes(f));
  if (bad.length) throw new Error(`unknown signature format ${bad.join(', ')} (expected ${FORMATS.join(', ')})`);
  return formats as SignatureFormat[];
}

export function verifyCommand(): Command {
  return new Command('verify')
    .description("verify a Box's signatures (cosign .sig tag and sigstore bundle referrer) against trusted public keys")
    .argument('<ref>', 'Box reference: [<registry>/]<name>:<tag> (an index is narrowed to its wasip1/wasm entry) or <registry>/<name>@sha256:<box>')
    .option('-k, --key <pem>', 'trusted public key: a PEM file or inline PEM (repeatable; default $BOXPROXY_KEY)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('-c, --config <file>', "also trust the config's signing key and signing.trustedPublicKeys")
    .option('--require <formats>', 'signature formats that must verify, e.g. cosign,bundle (default: at least one, and none invalid)')
    .option('--insecure', 'plain HTTP to the registry (loopback registries always use plain HTTP)')
    .action(async (refArg: string, opts: { key: string[]; config?: string; require?: string; insecure?: boolean }) => {
      let keys: VerificationKey[];
      let require: SignatureFormat[] | undefined;
      try {
        keys = await trustedKeys(opts.key, opts.config);
        require = opts.require !== undefined ? parseFormats(opts.require) : undefined;
      } catch (err) {
        // Unreadable or malformed keys, a bad config, an unknown format: the caller's to fix.
        if (err instanceof Error) return reportFailure(`verify: ${err.message}`, 2);
        throw err;
      }
      if (keys.length === 0) return reportFailure('verify: no trusted public key: pass --key <pem>, --config <file> or set BOXPROXY_KEY', 2);
      const result = await verifyBoxReference({ reference: refArg, publicKeys: keys, ...(opts.insecure ? { insecure: true } : {}), ...(require ? { require } : {}) });
      if (!result.ok) return reportFailure(`verify: ${refArg}: verification FAILED: ${result.reasons.join('; ')}`);
      process.stdout.write(
        `Verified OK: ${refArg} (Box ${result.boxDigest}): ${result.verified.join(' and ')} signature${result.verified.length > 1 ? 's' : ''} by key ${result.keyFingerprints.join(', ')}\n`,
      );
      for (const reason of result.reasons) process.stdout.write(`  note: ${reason}\n`);
    });
}
