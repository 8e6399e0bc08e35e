// The PyPI wasmtime wheel as an engine (the Wasmtime that runwasi's wasmtime shim embeds), driven through its
// Python API by wasmtime-run.py: argv, env, preopens, inherited stdio.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../proc.js';
import { python, toolsCacheDir, wasmtimePythonPath } from '../tools.js';
import type { EngineResult, WasiRunSpec } from './types.js';

const SCRIPT = fileURLToPath(new URL('./wasmtime-run.py', import.meta.url));

/** Wasmtime's compilation cache (compiling python.wasm with Cranelift takes seconds; reusing it, milliseconds). */
async function cacheConfig(): Promise<string> {
  const dir = join(toolsCacheDir(), 'wasmtime-cache');
  const file = join(dir, 'config.toml');
  if (!existsSync(file)) {
    await mkdir(dir, { recursive: true });
    await writeFile(file, `[cache]\ndirectory = ${JSON.stringify(join(dir, 'modules'))}\n`);
  }
  return file;
}

export async function runInWasmtime(spec: WasiRunSpec): Promise<EngineResult> {
  const r = await run(python(), [SCRIPT, JSON.stringify({ ...spec, cache: await cacheConfig() })], {
    allowFailure: true,
    env: { ...process.env, PYTHONPATH: wasmtimePythonPath(), PYTHONDONTWRITEBYTECODE: '1' },
    timeoutMs: 180_000,
  });
  return { engine: 'wasmtime', stdout: r.stdout, stderr: r.stderr, exitCode: r.code };
}
