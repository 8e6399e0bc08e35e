// ruby.wasm from npm (@ruby/<major.minor>-wasm-wasi): WASI reactors that need a JS host (src/box/runner.ts),
// found under node_modules and importable into the catalog.
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Descriptor } from '../oci/types.js';
import type { RubyRuntime, RuntimeCatalog } from '../convert/runtimes.js';
import { packageRuntime } from './package.js';
import type { RuntimeStore } from './store.js';
import { nearestVersion, parseMajorMinor } from './versions.js';

const RUBY_PACKAGE = /^(\d+)\.(\d+)-wasm-wasi$/;

/** node_modules directories from this file and from the working directory upwards. */
function defaultSearchDirs(): string[] {
  const dirs: string[] = [];
  for (let dir of [dirname(fileURLToPath(import.meta.url)), process.cwd()]) {
    for (;;) {
      dirs.push(join(dir, 'node_modules'));
      const up = dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  return [...new Set(dirs)];
}

/** Finds `@ruby/<major>.<minor>-wasm-wasi` packages installed under node_modules. */
export class NpmRuntimeCatalog implements RuntimeCatalog {
  private found?: Promise<Map<string, RubyRuntime>>;

  constructor(private readonly searchDirs: readonly string[] = defaultSearchDirs()) {}

  private async scan(): Promise<Map<string, RubyRuntime>> {
    const out = new Map<string, RubyRuntime>();
    for (const dir of this.searchDirs) {
      let names: string[];
      try {
        names = await readdir(join(dir, '@ruby'));
      } catch {
        continue;
      }
      for (const name of names.sort()) {
        const m = RUBY_PACKAGE.exec(name);
        if (!m) continue;
        const version = `${m[1]}.${m[2]}`;
        if (out.has(version)) continue;
        const root = join(dir, '@ruby', name);
        const wasmPath = join(root, 'dist', 'ruby+stdlib.wasm');
        try {
          if (!(await stat(wasmPath)).isFile()) continue;
        } catch {
          continue;
        }
        const runtime: RubyRuntime = { version, wasmPath };
        try {
          const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version?: string };
          if (pkg.version) runtime.package = `@ruby/${name}@${pkg.version}`;
        } catch {
          // A package without a readable package.json still has its module.
        }
        out.set(version, runtime);
      }
    }
    return out;
  }

  async ruby(version: string): Promise<RubyRuntime | undefined> {
    this.found ??= this.scan();
    const found = await this.found;
    const available = [...found.keys()].map((v) => parseMajorMinor(v) as [number, number]);
    const pick = nearestVersion(available, parseMajorMinor(version));
    return pick ? found.get(`${pick[0]}.${pick[1]}`) : undefined;
  }
}


/** Copies the npm ruby.wasm packages into the catalog as `ruby` artifacts (so a proxy can ship them the same way). */
export async function importNpmRuby(store: RuntimeStore, npm: RuntimeCatalog = new NpmRuntimeCatalog(), versions: readonly string[] = ['3.3', '3.4']): Promise<Descriptor[]> {
  const out: Descriptor[] = [];
  for (const v of versions) {
    const rt = await npm.ruby(v);
    if (!rt || rt.version !== v) continue;
    out.push(
      await packageRuntime(store, {
        name: 'ruby',
        version: rt.version,
        files: [{ path: 'ruby+stdlib.wasm', hostPath: rt.wasmPath, mode: 0o755 }],
        config: { name: 'ruby', version: rt.version, source: rt.package ?? 'npm' },
        mtime: 0,
      }),
    );
  }
  return out;
}
