import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface RubyRuntime {
  /** major.minor of the Ruby inside the module, e.g. "3.4". */
  version: string;
  /** ruby+stdlib.wasm on this machine. */
  wasmPath: string;
  /** e.g. "@ruby/3.4-wasm-wasi@2.7.2" (recorded in the Box so a run is traceable). */
  package?: string;
}

export interface PythonRuntime {
  /** Full version of the CPython inside the module, e.g. "3.11.2". */
  version: string;
  /** python.wasm (a WASI preview1 command) on this machine. */
  wasmPath: string;
  /** The stdlib directory on this machine (lib/pythonX.Y, with lib-dynload/ holding sysconfigdata). */
  stdlibDir: string;
  /** e.g. "python@3.11.2 sha256:…" (the catalog artifact, recorded in the Box so a run is traceable). */
  artifact?: string;
}

export interface QuickJsRuntime {
  /** Version of the QuickJS inside the module, e.g. "2025.04.26". */
  version: string;
  /** qjs.wasm (a WASI preview1 command) on this machine. */
  wasmPath: string;
  /** e.g. "quickjs@2025.04.26 sha256:…" (the catalog artifact, recorded in the Box so a run is traceable). */
  artifact?: string;
}

export interface RuntimeCatalog {
  /** The installed ruby.wasm nearest to `version` ("3.3.5", "3.1", or "" for the newest). */
  ruby(version: string): Promise<RubyRuntime | undefined>;
  /** The CPython-for-WASI runtime nearest to `version` ("3.11.9", "3.12", or "" for the newest); see src/runtimes. */
  python?(version: string): Promise<PythonRuntime | undefined>;
  /** QuickJS for WASI, the engine of Node Boxes (there is one version: "" asks for it); see src/runtimes. */
  quickjs?(version: string): Promise<QuickJsRuntime | undefined>;
}

const RUBY_PACKAGE = /^(\d+)\.(\d+)-wasm-wasi$/;

/** Parses "3.3.5" / "3.3" / "ruby3.1" into [major, minor]. */
export function parseRubyVersion(version: string): [number, number] | undefined {
  const m = /(\d+)\.(\d+)/.exec(version);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** Same major first, then the closest minor (the newer one on a tie); the newest when `want` is unknown. */
export function nearestVersion(available: ReadonlyArray<[number, number]>, want: [number, number] | undefined): [number, number] | undefined {
  const sorted = [...available].sort((a, b) => b[0] - a[0] || b[1] - a[1]);
  if (!want) return sorted[0];
  let best: [number, number] | undefined;
  let bestScore = Infinity;
  for (const v of sorted) {
    const score = Math.abs(v[0] - want[0]) * 1000 + Math.abs(v[1] - want[1]);
    if (score < bestScore) {
      best = v;
      bestScore = score;
    }
  }
  return best;
}

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
    const available = [...found.keys()].map((v) => parseRubyVersion(v) as [number, number]);
    const pick = nearestVersion(available, parseRubyVersion(version));
    return pick ? found.get(`${pick[0]}.${pick[1]}`) : undefined;
  }
}
