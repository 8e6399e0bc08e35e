// The runtime catalog conversions use: the OCI-layout store, filled from a runtime registry when it lacks the
// wanted major.minor, with ruby.wasm from npm behind the same interface.
import { join } from 'node:path';
import type { PythonRuntime, QuickJsRuntime, RubyRuntime, RuntimeCatalog } from '../convert/runtimes.js';
import type { RuntimeBuildManifest } from './build.js';
import { NpmRuntimeCatalog } from './npm-ruby.js';
import { pullRuntime, RuntimeNotInRegistryError, runtimeTag } from './pull.js';
import { RuntimeStore, type FoundRuntime } from './store.js';
import { parseMajorMinor } from './versions.js';

/** Where conversions find runtimes (config `conversion.runtimes`). */
export interface RuntimeSourceOptions {
  /** Catalog directory; default defaultCatalogDir(). */
  catalog?: string;
  /** Repository of runtime artifacts tagged `<name>-<major.minor>` (ghcr.io/boxproxy/runtimes), pulled on a miss. */
  registry?: string;
  /** Reach the registry over plain http (loopback hosts always are). */
  insecure?: boolean;
}

/**
 * The RuntimeCatalog conversions use: runtimes from the OCI-layout catalog, pulled into it from a runtime
 * registry when it lacks the wanted major.minor, with ruby.wasm from npm packages behind the same interface
 * (a catalog `ruby` artifact, when one was imported or pulled, wins).
 */
export class OciRuntimeCatalog implements RuntimeCatalog {
  readonly store: RuntimeStore;
  private readonly npm: RuntimeCatalog;
  private readonly registry: string | undefined;
  private readonly insecure: boolean;
  /** One pull per tag per catalog object; false when the registry has no such tag. */
  private readonly pulls = new Map<string, Promise<boolean>>();

  constructor(opts: { dir?: string; npm?: RuntimeCatalog; registry?: string; insecure?: boolean } = {}) {
    this.store = new RuntimeStore(opts.dir);
    this.npm = opts.npm ?? new NpmRuntimeCatalog();
    this.registry = opts.registry;
    this.insecure = opts.insecure ?? false;
  }

  /** Options from config (`catalog` is the directory). */
  static fromOptions(opts: RuntimeSourceOptions = {}): OciRuntimeCatalog {
    return new OciRuntimeCatalog({
      ...(opts.catalog !== undefined ? { dir: opts.catalog } : {}),
      ...(opts.registry !== undefined ? { registry: opts.registry } : {}),
      ...(opts.insecure !== undefined ? { insecure: opts.insecure } : {}),
    });
  }

  /**
   * The local entry of the wanted major.minor; else, with a registry, `<registry>:<name>-<major.minor>` pulled
   * into the store; else the nearest local entry. Pull failures other than "no such tag" are thrown: a
   * conversion fails (and is retried later) rather than settling for another version.
   */
  private async find(name: string, version: string): Promise<FoundRuntime | undefined> {
    const want = parseMajorMinor(version);
    const local = await this.store.nearest(name, version);
    const exact = local !== undefined && want !== undefined && runtimeTag(name, local.version) === runtimeTag(name, version);
    if (!exact && this.registry !== undefined && want !== undefined) {
      const key = runtimeTag(name, version) as string;
      let pull = this.pulls.get(key);
      if (!pull) {
        pull = pullRuntime(this.store, this.registry, name, version, { insecure: this.insecure }).then(
          () => true,
          (err: unknown) => {
            if (err instanceof RuntimeNotInRegistryError) return false;
            throw err;
          },
        );
        this.pulls.set(key, pull);
      }
      if (await pull) return this.store.find(name, version);
    }
    return local ? this.store.unpack(local) : undefined;
  }

  async python(version: string): Promise<PythonRuntime | undefined> {
    const found = await this.find('python', version);
    if (!found) return undefined;
    const files = (found.config as Partial<RuntimeBuildManifest>).files;
    return {
      version: found.version,
      wasmPath: join(found.dir, files?.interpreter ?? 'python.wasm'),
      stdlibDir: join(found.dir, files?.stdlib ?? `lib/python${found.version.split('.').slice(0, 2).join('.')}`),
      artifact: `python@${found.version} ${found.digest}`,
    };
  }

  async quickjs(version: string): Promise<QuickJsRuntime | undefined> {
    const found = await this.find('quickjs', version);
    if (!found) return undefined;
    const files = (found.config as Partial<RuntimeBuildManifest>).files;
    return { version: found.version, wasmPath: join(found.dir, files?.interpreter ?? 'qjs.wasm'), artifact: `quickjs@${found.version} ${found.digest}` };
  }

  async ruby(version: string): Promise<RubyRuntime | undefined> {
    const found = await this.find('ruby', version);
    if (found) {
      return { version: found.version, wasmPath: join(found.dir, 'ruby+stdlib.wasm'), package: `ruby@${found.version} ${found.digest}` };
    }
    return this.npm.ruby(version);
  }
}
