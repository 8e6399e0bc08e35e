// `boxproxy key`: prints the public half of the configured signing key, for verifiers (cosign, openssl,
// `boxproxy verify --key`). Also the config-file resolution the signing commands share.
import { Command } from 'commander';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, signingKeyPath } from '../../config/load.js';
import type { Config } from '../../config/schema.js';
import { KeyFileError, loadPrivateKey } from '../../sign/keys.js';

/** config/default.yaml of the package, wherever it runs from (src/cli/commands/ or dist/src/cli/commands/). */
function packageDefaultConfig(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const root = here.includes('/dist/') ? resolve(here, '../../../..') : resolve(here, '../../..');
  return resolve(root, 'config/default.yaml');
}

/** The config file a command uses: --config, else $BOXPROXY_CONFIG, else the packaged default (as `serve` does). */
export function configFileOf(flag: string | undefined): string {
  return flag ?? process.env.BOXPROXY_CONFIG ?? packageDefaultConfig();
}

export function loadCommandConfig(flag: string | undefined): Config {
  return loadConfig(configFileOf(flag));
}

/** Prints `message` as boxproxy's other errors are printed and sets a failing exit code (no process.exit: tests call actions). */
export function reportFailure(message: string, code = 1): void {
  process.stderr.write(`boxproxy: ${message}\n`);
  process.exitCode = code;
}

export function keyCommand(): Command {
  return new Command('key')
    .description('print the public key (PEM) of the configured Box signing key')
    .option('-c, --config <file>', 'config file (default: $BOXPROXY_CONFIG or config/default.yaml)')
    .option('--fingerprint', 'print the key fingerprint (hex sha256 of the SPKI DER) instead of the PEM')
    .action(async (opts: { config?: string; fingerprint?: boolean }) => {
      const config = loadCommandConfig(opts.config);
      const path = signingKeyPath(config);
      if (!existsSync(path)) {
        reportFailure(`no signing key at ${path}: \`boxproxy serve\` creates one on first start, or run \`boxproxy keygen --out ${path}\``);
        return;
      }
      try {
        // Group-readable secret mounts are common; the key is only read here, so a loose mode is a warning.
        const key = await loadPrivateKey(path, { allowInsecurePermissions: true, warn: (m) => process.stderr.write(`boxproxy: warning: ${m}\n`) });
        process.stdout.write(opts.fingerprint ? `${key.fingerprint}\n` : key.publicKey.pem);
      } catch (err) {
        if (err instanceof KeyFileError) return reportFailure(err.message);
        throw err;
      }
    });
}
