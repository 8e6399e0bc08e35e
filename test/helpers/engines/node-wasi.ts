// node:wasi as an engine: plain WASI preview1 in a child process, no boxproxy code involved.
import { run } from '../proc.js';
import { TRAP_EXIT_CODE, type EngineCommand, type EngineResult, type WasiRunSpec } from './types.js';

const PROGRAM = `
  import { WASI } from 'node:wasi';
  import { readFile } from 'node:fs/promises';
  const spec = JSON.parse(process.argv[1]);
  const env = Object.fromEntries(spec.env.map((e) => { const i = e.indexOf('='); return [e.slice(0, i), e.slice(i + 1)]; }));
  const preopens = Object.fromEntries(spec.preopens.map((p) => [p.guest, p.host]));
  const wasi = new WASI({ version: 'preview1', args: spec.args, env, preopens, returnOnExit: true });
  const module = await WebAssembly.compile(await readFile(spec.module));
  const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
  try {
    process.exitCode = wasi.start(instance);
  } catch (err) {
    if (!(err instanceof WebAssembly.RuntimeError)) throw err;
    process.stderr.write('node:wasi: ' + spec.args[0] + ' trapped: ' + err.message + '\\n');
    process.exitCode = ${TRAP_EXIT_CODE};
  }
`;

export function nodeWasiCommand(spec: WasiRunSpec): EngineCommand {
  return { cmd: process.execPath, args: ['--disable-warning=ExperimentalWarning', '--input-type=module', '-e', PROGRAM, JSON.stringify(spec)], env: process.env };
}

export async function runInNodeWasi(spec: WasiRunSpec): Promise<EngineResult> {
  const c = nodeWasiCommand(spec);
  const r = await run(c.cmd, c.args, { allowFailure: true, env: c.env, timeoutMs: 120_000 });
  return { engine: 'node:wasi', stdout: r.stdout, stderr: r.stderr, exitCode: r.code };
}
