// Compiles a Node Box's bundle to QuickJS bytecode with the Box's own qjs.wasm (`qjs --compile`, see
// scripts/runtimes/quickjs/wasi.patch), so the Box starts without parsing its script: the same engine build
// writes and reads the bytecode. A script QuickJS cannot parse is found here, not when the Box runs.
import { closeSync, openSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { WASI as WasiClass } from 'node:wasi';

export type CompileResult = { ok: true; file: string; bytes: number } | { ok: false; reason: string };

async function loadWasi(): Promise<typeof WasiClass> {
  const emitWarning = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    if (/WASI/.test(typeof warning === 'string' ? warning : warning.message)) return;
    (emitWarning as (w: string | Error, ...r: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    return (await import('node:wasi')).WASI;
  } finally {
    process.emitWarning = emitWarning;
  }
}

/**
 * `qjs --strip-source --script|--module --compile <box dir>/<name>.qbc <box dir>/<name>` with the bundle's directory
 * preopened at `boxDir`, its path inside the Box, so stack traces name the Box's file. Source text is stripped
 * (line numbers stay): Function.prototype.toString() shows no body.
 */
export async function compileBundle(qjsWasm: string, bundle: string, boxDir: string, format: 'iife' | 'esm'): Promise<CompileResult> {
  const WASI = await loadWasi();
  const out = bundle.replace(/\.m?js$/, '.qbc');
  const errFile = join(dirname(bundle), '.compile.err');
  const errFd = openSync(errFile, 'w');
  let code: number;
  try {
    const guest = `${boxDir}/${basename(bundle)}`;
    const wasi = new WASI({
      version: 'preview1',
      args: ['qjs', '--strip-source', format === 'esm' ? '--module' : '--script', '--compile', `${boxDir}/${basename(out)}`, guest],
      env: {},
      preopens: { [boxDir]: dirname(bundle) },
      stdout: errFd,
      stderr: errFd,
      returnOnExit: true,
    });
    const instance = await WebAssembly.instantiate(await WebAssembly.compile(await readFile(qjsWasm)), wasi.getImportObject() as WebAssembly.Imports);
    code = wasi.start(instance);
  } catch (err) {
    return { ok: false, reason: `QuickJS could not compile the bundle: ${(err as Error).message}` };
  } finally {
    closeSync(errFd);
  }
  if (code !== 0) {
    const text = readFileSync(errFile, 'utf8').trim().split('\n').slice(0, 4).join(' / ');
    return { ok: false, reason: `QuickJS cannot compile the app: ${text || `qjs exited with ${code}`}` };
  }
  return { ok: true, file: out, bytes: (await readFile(out)).length };
}
