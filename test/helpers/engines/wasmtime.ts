// The PyPI wasmtime wheel as an engine (the Wasmtime that runwasi's wasmtime shim embeds), driven through its
// Python API by wasmtime-run.py: argv, env, preopens, inherited stdio.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../proc.js';
import { python, repoFile, toolsCacheDir, wasmtimePythonPath } from '../tools.js';
import type { EngineCommand, EngineResult, WasiRunSpec } from './types.js';

const SCRIPT = repoFile('test/helpers/engines/wasmtime-run.py');

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

export async function wasmtimeCommand(spec: WasiRunSpec): Promise<EngineCommand> {
  return {
    cmd: python(),
    args: [SCRIPT, JSON.stringify({ ...spec, cache: await cacheConfig() })],
    env: { ...process.env, PYTHONPATH: wasmtimePythonPath(), PYTHONDONTWRITEBYTECODE: '1' },
  };
}

export async function runInWasmtime(spec: WasiRunSpec): Promise<EngineResult> {
  const c = await wasmtimeCommand(spec);
  const r = await run(c.cmd, c.args, { allowFailure: true, env: c.env, timeoutMs: 180_000 });
  return { engine: 'wasmtime', stdout: r.stdout, stderr: r.stderr, exitCode: r.code };
}
