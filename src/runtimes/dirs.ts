// Where runtimes live on this machine: the build cache (scripts/runtimes/<name>/build.sh outputs, Debian source
// indexes) and the catalog conversions read.
import { homedir } from 'node:os';
import { join } from 'node:path';

export function defaultRuntimeCacheDir(): string {
  return process.env.BOXPROXY_RUNTIME_CACHE || join(homedir(), '.cache', 'boxproxy', 'runtimes');
}

export function defaultCatalogDir(): string {
  return process.env.BOXPROXY_RUNTIME_CATALOG || join(defaultRuntimeCacheDir(), 'catalog');
}
