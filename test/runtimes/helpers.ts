// The CPython-for-WASI runtime the Python tests use: built once per cache (scripts/runtimes/python/build.sh keys
// its output by its inputs, and serializes concurrent builds), then packaged into the catalog once.
import { spawn } from 'node:child_process';
import { buildRuntime, ensureBuiltRuntime, type BuiltRuntime } from '../../src/runtimes/build.js';
import type { OciRuntimeCatalog } from '../../src/runtimes/catalog.js';

let built: Promise<BuiltRuntime> | undefined;
let catalog: Promise<OciRuntimeCatalog> | undefined;

/** The cached build (~4 minutes the first time on 2 cores, instant afterwards). */
export function pythonBuild(): Promise<BuiltRuntime> {
  built ??= buildRuntime('python');
  return built;
}

/** The shared runtime catalog ($BOXPROXY_RUNTIME_CATALOG or <cache>/catalog) holding that build. */
export function pythonCatalog(): Promise<OciRuntimeCatalog> {
  catalog ??= pythonBuild().then(() => ensureBuiltRuntime('python'));
  return catalog;
}

export interface WasiRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a WASI preview1 command with plain node:wasi in a child process (no boxproxy code involved): the way any
 * runwasi-like runtime runs a Box, args and env as given, `preopens` as given.
 */
export async function runPlainWasi(wasmPath: string, args: readonly string[], env: readonly string[], preopens: Record<string, string>): Promise<WasiRun> {
  const program = `
    import { WASI } from 'node:wasi';
    import { readFile } from 'node:fs/promises';
    const spec = JSON.parse(process.argv[1]);
    const env = Object.fromEntries(spec.env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
    const wasi = new WASI({ version: 'preview1', args: spec.args, env, preopens: spec.preopens, returnOnExit: true });
    const module = await WebAssembly.compile(await readFile(spec.wasm));
    const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
    process.exitCode = wasi.start(instance);
  `;
  const spec = JSON.stringify({ wasm: wasmPath, args, env, preopens });
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', '--input-type=module', '-e', program, spec], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
