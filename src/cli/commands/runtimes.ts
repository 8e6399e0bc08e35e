// `boxproxy runtimes build python` / `list` / `push`: builds Wasm language runtimes from Debian's source packages
// (scripts/runtimes/<name>/build.sh, cached by input), keeps them in the runtime catalog (an OCI layout) and
// publishes them to a runtime registry.
import { Command } from 'commander';
import { resolve } from 'node:path';
import { ensureBuiltRuntime, RUNTIME_NAMES, type BuildableRuntime } from '../../runtimes/build.js';
import { defaultCatalogDir, defaultRuntimeCacheDir } from '../../runtimes/dirs.js';
import { importNpmRuby } from '../../runtimes/npm-ruby.js';
import { RuntimeStore } from '../../runtimes/store.js';
import { pushRuntime } from '../../runtimes/pull.js';

export function runtimesCommand(): Command {
  const cmd = new Command('runtimes').description('build and list the Wasm language runtimes Boxes are made with');
  cmd
    .command('build')
    .description(`build a runtime for WASI from Debian's source packages and add it to the catalog (${RUNTIME_NAMES.join(', ')})`)
    .argument('<name>', 'runtime to build')
    .option('--cache-dir <dir>', 'build cache (default $BOXPROXY_RUNTIME_CACHE or ~/.cache/boxproxy/runtimes)')
    .option('--catalog <dir>', 'runtime catalog OCI layout (default $BOXPROXY_RUNTIME_CATALOG or <cache>/catalog)')
    .option('-f, --force', 'rebuild even when the cache holds a build of the same inputs')
    .option('-v, --verbose', 'print the build log')
    .action(async (name: string, opts: { cacheDir?: string; catalog?: string; force?: boolean; verbose?: boolean }) => {
      if (!(RUNTIME_NAMES as readonly string[]).includes(name)) {
        process.stderr.write(`boxproxy: unknown runtime ${name} (buildable: ${RUNTIME_NAMES.join(', ')})\n`);
        process.exitCode = 2;
        return;
      }
      const cacheDir = resolve(opts.cacheDir ?? defaultRuntimeCacheDir());
      const catalogDir = resolve(opts.catalog ?? defaultCatalogDir());
      process.stderr.write(`boxproxy: building ${name} (cache ${cacheDir}; a first CPython build takes minutes)\n`);
      const catalog = await ensureBuiltRuntime(name as BuildableRuntime, {
        cacheDir,
        catalogDir,
        ...(opts.force ? { force: true } : {}),
        ...(opts.verbose ? { onLog: (line: string) => process.stderr.write(line + '\n') } : {}),
      });
      const entries = (await catalog.store.list()).filter((e) => e.name === name);
      for (const e of entries) process.stdout.write(`${e.name}\t${e.version}\t${e.descriptor.digest}\t${catalogDir}\n`);
    });
  cmd
    .command('import-ruby')
    .description('copy the ruby.wasm npm packages (@ruby/<major.minor>-wasm-wasi) into the catalog')
    .option('--catalog <dir>', 'runtime catalog OCI layout')
    .action(async (opts: { catalog?: string }) => {
      const store = new RuntimeStore(resolve(opts.catalog ?? defaultCatalogDir()));
      for (const d of await importNpmRuby(store)) process.stdout.write(`${d.annotations?.['dev.boxproxy.runtime.name']}\t${d.annotations?.['dev.boxproxy.runtime.version']}\t${d.digest}\n`);
    });
  cmd
    .command('list')
    .description('list the runtimes in the catalog')
    .option('--catalog <dir>', 'runtime catalog OCI layout')
    .action(async (opts: { catalog?: string }) => {
      const store = new RuntimeStore(resolve(opts.catalog ?? defaultCatalogDir()));
      for (const e of await store.list()) process.stdout.write(`${e.name}\t${e.version}\t${e.descriptor.digest}\n`);
    });
  cmd
    .command('push')
    .description('publish a catalog runtime to a runtime registry as <registry>:<name>-<major.minor> (no credentials are sent)')
    .argument('<name>', 'runtime name (python, ruby)')
    .argument('<version>', 'version in the catalog (exact, or major.minor for its newest patch)')
    .argument('<registry>', 'repository of runtime artifacts, e.g. 127.0.0.1:5001/runtimes')
    .option('--catalog <dir>', 'runtime catalog OCI layout')
    .option('--insecure', 'plain http (loopback registries always use it)')
    .action(async (name: string, version: string, registry: string, opts: { catalog?: string; insecure?: boolean }) => {
      const store = new RuntimeStore(resolve(opts.catalog ?? defaultCatalogDir()));
      try {
        const pushed = await pushRuntime(store, name, version, registry, { insecure: Boolean(opts.insecure) });
        process.stdout.write(`${pushed.reference}\t${pushed.digest}\n`);
      } catch (err) {
        process.stderr.write(`boxproxy: ${(err as Error).message}\n`);
        process.exitCode = 1;
      }
    });
  return cmd;
}
