import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { configSchema, type Config } from './schema.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface ConfigOverrides {
  listen?: string;
  storage?: string;
}

/** Parses and validates a config object; errors name the key and the reason. */
export function parseConfig(raw: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
    throw new ConfigError(`invalid ${source}:\n${lines.join('\n')}`);
  }
  return result.data;
}

/** Reads a YAML file, applies flag overrides, resolves paths relative to the file. */
export function loadConfig(file: string, overrides: ConfigOverrides = {}): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config ${file}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config ${file} is not valid YAML: ${(err as Error).message}`);
  }
  const obj = (raw ?? {}) as Record<string, unknown>;
  if (typeof obj !== 'object' || Array.isArray(obj)) throw new ConfigError(`config ${file}: (root): expected a mapping`);
  if (overrides.listen !== undefined) obj.listen = overrides.listen;
  if (overrides.storage !== undefined) obj.storage = { ...((obj.storage as object | undefined) ?? {}), path: overrides.storage };
  const config = parseConfig(obj, `config ${file}`);
  const base = dirname(resolve(file));
  // A storage path given by flag is relative to the working directory, as flags are.
  if (overrides.storage === undefined) config.storage.path = resolve(base, config.storage.path);
  else config.storage.path = resolve(config.storage.path);
  if (config.signing.keyPath !== undefined) config.signing.keyPath = resolve(base, config.signing.keyPath);
  config.signing.trustedPublicKeys = config.signing.trustedPublicKeys.map((p) => resolve(base, p));
  if (config.conversion.runtimes.catalog !== undefined) config.conversion.runtimes.catalog = resolve(base, config.conversion.runtimes.catalog);
  for (const u of config.upstreams) {
    if (u.passwordFile !== undefined) {
      const path = resolve(base, u.passwordFile);
      try {
        u.password = readFileSync(path, 'utf8').trim();
      } catch (err) {
        throw new ConfigError(`config ${file}: upstreams.${u.name}.passwordFile: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
      }
    }
  }
  return config;
}

/** The upstream used when a request names none; the first one unless set. */
export function defaultUpstreamName(config: Config): string {
  return config.defaultUpstream ?? (config.upstreams[0] as { name: string }).name;
}

/** Where the Box signing key lives: signing.keyPath, else inside the storage directory. */
export function signingKeyPath(config: Config): string {
  return config.signing.keyPath ?? resolve(config.storage.path, 'keys', 'signing.pem');
}
