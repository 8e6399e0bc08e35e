#!/usr/bin/env node
import { ConfigError } from '../config/load.js';
import { buildProgram } from './program.js';

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`boxproxy: ${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`boxproxy: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
