// `boxproxy resign`: after a key rotation, signs every stored Box again with the current signing key.
// Runs offline on the storage directory: the proxy reads conversion records once at start, so it must be
// stopped while this runs and started again afterwards.
import { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { signingKeyPath } from '../../config/load.js';
import { verifyCosign } from '../../sign/cosign.js';
import { loadPrivateKey, type SigningKey } from '../../sign/keys.js';
import { signManifest } from '../../sign/signer.js';
import { silentLogger } from '../../ops/log.js';
import { BlobStore } from '../../store/blobs.js';
import { ConversionStore, type ConversionRecord } from '../../store/conversions.js';
import { loadCommandConfig } from './key.js';

export interface ResignOptions {
  storageRoot: string;
  key: SigningKey;
  /** Re-sign Boxes whose signature already verifies with `key` too (new signature digests). */
  force?: boolean;
}

export interface ResignSummary {
  resigned: string[];
  /** Boxes already signed with the current key. */
  current: string[];
}

async function readStored(store: BlobStore, digest: string): Promise<Buffer | undefined> {
  try {
    return await readFile(store.pathOf(digest));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function signedWith(store: BlobStore, rec: ConversionRecord, key: SigningKey): Promise<boolean> {
  const box = rec.box;
  if (!box) return false;
  const manifest = await readStored(store, box.signatures.cosign.descriptor.digest);
  if (!manifest) return false;
  const result = await verifyCosign(manifest, (d) => readStored(store, d), [key.publicKey], box.descriptor.digest);
  return result.ok;
}

/**
 * Signs each stored Box (both formats) with `key`, stores the new signature blobs and manifests, and points the
 * conversion record at them. The Box itself, its digest and the old signature files are left as they are.
 */
export async function resignBoxes(opts: ResignOptions): Promise<ResignSummary> {
  const records = new ConversionStore(opts.storageRoot);
  await records.init();
  // No init(): that empties the store's tmp dir, which is only safe when nothing else writes there.
  const store = new BlobStore(opts.storageRoot, { logger: silentLogger() });
  const summary: ResignSummary = { resigned: [], current: [] };
  for (const rec of records.all()) {
    const box = rec.box;
    if (rec.state !== 'done' || !box) continue;
    if (!opts.force && (await signedWith(store, rec, opts.key))) {
      summary.current.push(box.descriptor.digest);
      continue;
    }
    const { mediaType, digest, size } = box.descriptor;
    const sigs = await signManifest(opts.key, { reference: `${rec.upstream}/${rec.repository}`, descriptor: { mediaType, digest, size } });
    const sigBlobs = [...sigs.cosign.blobs, ...sigs.bundle.blobs];
    for (const b of sigBlobs) await store.putBuffer(b.digest, b.bytes);
    await store.putBuffer(sigs.cosign.manifest.digest, sigs.cosign.manifest.bytes);
    await store.putBuffer(sigs.bundle.manifest.digest, sigs.bundle.manifest.bytes);
    const oldSignatureManifests = new Set([box.signatures.cosign.descriptor.digest, box.signatures.bundle.descriptor.digest]);
    await records.put({
      ...rec,
      updatedAt: Date.now(),
      box: {
        ...box,
        blobs: [...new Set([...box.blobs, ...sigBlobs.map((b) => b.digest)])],
        manifests: [
          ...box.manifests.filter((m) => !oldSignatureManifests.has(m.digest)),
          { digest: sigs.cosign.manifest.digest, mediaType: sigs.cosign.manifest.mediaType },
          { digest: sigs.bundle.manifest.digest, mediaType: sigs.bundle.manifest.mediaType },
        ],
        signatures: { cosign: { tag: sigs.cosign.tag, descriptor: sigs.cosign.descriptor }, bundle: { descriptor: sigs.bundle.descriptor } },
      },
    });
    summary.resigned.push(digest);
  }
  return summary;
}

export function resignCommand(): Command {
  return new Command('resign')
    .description('sign every stored Box again with the current signing key (after a key rotation); run with the proxy stopped')
    .option('-c, --config <file>', 'config file (default: $BOXPROXY_CONFIG or config/default.yaml)')
    .option('-f, --force', 're-sign Boxes already signed with the current key too')
    .addHelpText(
      'after',
      [
        '',
        'Key rotation:',
        '  1. boxproxy key -c cfg.yaml > old.pub          keep the old public key',
        '  2. add old.pub to signing.trustedPublicKeys  (verifiers keep accepting Boxes signed with it)',
        '  3. stop the proxy; boxproxy keygen -c cfg.yaml --force',
        '  4. boxproxy resign -c cfg.yaml                 new signatures for every stored Box',
        '  5. start the proxy; `.sig` tags and referrers now carry signatures by the new key',
      ].join('\n'),
    )
    .action(async (opts: { config?: string; force?: boolean }) => {
      const config = loadCommandConfig(opts.config);
      const key = await loadPrivateKey(signingKeyPath(config), { warn: (m) => process.stderr.write(`boxproxy: warning: ${m}\n`) });
      const summary = await resignBoxes({ storageRoot: config.storage.path, key, ...(opts.force ? { force: true } : {}) });
      for (const digest of summary.resigned) process.stdout.write(`re-signed ${digest}\n`);
      process.stdout.write(`${summary.resigned.length} Box(es) re-signed with key ${key.fingerprint}, ${summary.current.length} already signed with it\n`);
    });
}
