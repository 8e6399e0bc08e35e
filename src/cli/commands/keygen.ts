// `boxproxy keygen`: creates a Box signing key (PKCS#8 PEM, ECDSA P-256, mode 0600) and prints its public key.
import { Command } from 'commander';
import { resolve } from 'node:path';
import { signingKeyPath } from '../../config/load.js';
import { KeyFileError, generateKeyPair, savePrivateKey } from '../../sign/keys.js';
import { loadCommandConfig, reportFailure } from './key.js';

export function keygenCommand(): Command {
  return new Command('keygen')
    .description('create a Box signing key (PKCS#8 PEM, ECDSA P-256, mode 0600) and print its public key')
    .option('-o, --out <path>', 'where to write the private key (default: signing.keyPath of the config)')
    .option('-c, --config <file>', 'config file naming signing.keyPath when --out is not given')
    .option('-f, --force', 'replace an existing key file (Boxes signed with the old key then need `boxproxy resign`)')
    .addHelpText(
      'after',
      '\nThe public key (PEM) goes to stdout, the fingerprint to stderr. Keep the old public key in\n' +
        'signing.trustedPublicKeys when rotating, so `boxproxy verify --config` still accepts older Boxes.',
    )
    .action(async (opts: { out?: string; config?: string; force?: boolean }) => {
      const path = opts.out !== undefined ? resolve(opts.out) : signingKeyPath(loadCommandConfig(opts.config));
      const key = await generateKeyPair();
      try {
        await savePrivateKey(key, path, { overwrite: opts.force === true });
      } catch (err) {
        if (err instanceof KeyFileError && err.code === 'EXISTS') return reportFailure(`${err.message} (use --force to replace it)`);
        throw err;
      }
      process.stderr.write(`boxproxy: wrote ${path} (fingerprint ${key.fingerprint})\n`);
      process.stdout.write(key.publicKey.pem);
    });
}
