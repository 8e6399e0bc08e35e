// What every engine runner gets and gives back: one WASI preview1 command run, as runwasi sets it up.

/** A WASI command run, engine-neutral: the same spec goes to node:wasi, wasmtime and wazero. */
export interface WasiRunSpec {
  /** Host path of the module file. */
  module: string;
  /** WASI argv; argv[0] is the module's path inside the Box (Entrypoint[0]), as runwasi passes it. */
  args: string[];
  /** `K=V`, in order. */
  env: string[];
  /** Guest path -> host directory; the rootfs is preopened as "/". */
  preopens: Array<{ guest: string; host: string }>;
}

/** How an engine runner starts its process (the benchmark times the same commands). */
export interface EngineCommand {
  cmd: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

export type EngineName = 'node:wasi' | 'wasmtime' | 'wazero';

export interface EngineResult {
  engine: EngineName;
  stdout: string;
  stderr: string;
  /** The module's exit status; TRAP_EXIT_CODE (134, what wasmtime's CLI reports) when it trapped. */
  exitCode: number;
}

/** 128 + SIGABRT: the status wasmtime's CLI gives a trapping module, and boxproxy's runner too. */
export const TRAP_EXIT_CODE = 134;

export function splitEnv(item: string): [string, string] {
  const eq = item.indexOf('=');
  return eq < 0 ? [item, ''] : [item.slice(0, eq), item.slice(eq + 1)];
}
