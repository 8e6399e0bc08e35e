import { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../ops/log.js';
import { startProxy } from './serve.js';
import { convertCommand } from './commands/convert.js';
import { keyCommand } from './commands/key.js';
import { keygenCommand } from './commands/keygen.js';
import { resignCommand } from './commands/resign.js';
import { runCommand } from './commands/run.js';
import { runtimesCommand } from './commands/runtimes.js';
import { verifyCommand } from './commands/verify.js';

// config/default.yaml relative to the package, wherever it is started from (src/ or dist/src/).
function defaultConfigPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const root = here.includes('/dist/') ? resolve(here, '../../..') : resolve(here, '../..');
  return resolve(root, 'config/default.yaml');
}

function serveCommand(): Command {
  return new Command('serve')
    .description('run the pull-through registry')
    .option('-c, --config <file>', 'config file (default: $BOXPROXY_CONFIG or config/default.yaml)')
    .option('--listen <host:port>', 'override listen')
    .option('--storage <dir>', 'override storage.path')
    .action(async (opts: { config?: string; listen?: string; storage?: string }) => {
      const file = opts.config ?? process.env.BOXPROXY_CONFIG ?? defaultConfigPath();
      const config = loadConfig(file, { listen: opts.listen, storage: opts.storage });
      const logger = createLogger(config.log.level);
      const proxy = await startProxy(config, { logger });
      const stop = (signal: string) => {
        logger.info({ signal }, 'shutting down');
        proxy.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
}

export function buildProgram(): Command {
  const program = new Command('boxproxy')
    .description('pull-through OCI registry that turns container images into WebAssembly Boxes')
    .version('0.1.0');
  program.addCommand(serveCommand());
  program.addCommand(convertCommand());
  program.addCommand(runCommand());
  program.addCommand(keygenCommand());
  program.addCommand(keyCommand());
  program.addCommand(verifyCommand());
  program.addCommand(resignCommand());
  program.addCommand(runtimesCommand());
  return program;
}

