// The wazero CLI as an engine: `wazero run -mount=host:guest -env=K=V module.wasm -- args`.
import { basename, join } from 'node:path';
import { run } from '../proc.js';
import { toolBin, toolsCacheDir } from '../tools.js';
import { TRAP_EXIT_CODE, type EngineCommand, type EngineResult, type WasiRunSpec } from './types.js';

/**
 * wazero's CLI sets argv[0] to the module file's base name (`WithArgs(filepath.Base(wasmPath), …)`), never the
 * path the Box names: the argv[0] this run really gets, so a comparison can give the other engines the same.
 */
export function wazeroArgv0(spec: WasiRunSpec): string {
  return basename(spec.module);
}

/** The command line: compiled code cached in the tools cache (-cachedir), stdio inherited. */
export function wazeroCommand(spec: WasiRunSpec): EngineCommand {
  const mounts = spec.preopens.map((p) => `-mount=${p.host}:${p.guest}`);
  const env = spec.env.map((e) => `-env=${e}`);
  // Without arguments a lone "--" would reach the module; with them wazero drops the first "--".
  const args = spec.args.length > 1 ? ['--', ...spec.args.slice(1)] : [];
  return { cmd: toolBin('wazero'), args: ['run', `-cachedir=${join(toolsCacheDir(), 'wazero-cache')}`, ...mounts, ...env, spec.module, ...args], env: process.env };
}

export async function runInWazero(spec: WasiRunSpec): Promise<EngineResult> {
  const c = wazeroCommand(spec);
  const r = await run(c.cmd, c.args, { allowFailure: true, env: c.env, timeoutMs: 120_000 });
  // A trap ends `wazero run` with status 1 and "wasm error: <trap>" (as "error instantiating wasm binary").
  const trapped = r.code === 1 && /^error instantiating wasm binary: .*wasm error: /m.test(r.stderr);
  return { engine: 'wazero', stdout: r.stdout, stderr: r.stderr, exitCode: trapped ? TRAP_EXIT_CODE : r.code };
}
