// The engines a differential test runs Boxes with. An engine is a parameter: `boxproxyRun` is what
// `boxproxy run` does; `wasiEngines` runs the Box as runwasi would in node:wasi, wasmtime and wazero
// (test/helpers/engines: rootfs at /, Entrypoint + Cmd, Env), asserting they agree, in the kinds of Box they run.
import { planRun, runPlanIsolated } from '../../src/box/runner.js';
import type { UnpackedBox } from '../../src/box/layout.js';
import { runBoxInEngines } from '../helpers/engines/index.js';
import type { RunOutput } from './native.js';

export interface BoxRunOptions {
  /** Replace the Box's Cmd, like `docker run BOX args…`. */
  args?: readonly string[];
  /** `NAME=value` entries over the Box's Env. */
  env?: readonly string[];
}

/** The Box as an engine gets it: unpacked (boxproxy's cache) and as the OCI layout it came from. */
export interface EngineInput {
  unpacked: UnpackedBox;
  layout: string;
  reference: string;
}

export interface BoxEngine {
  /** Shown in assertion messages. */
  name: string;
  run(box: EngineInput, opts: BoxRunOptions): Promise<RunOutput>;
}

/** `boxproxy run`: boxproxy's runner (Node's WASI, or the ruby.wasm host) in a child process. */
export const boxproxyRun: BoxEngine = {
  name: 'boxproxy run',
  async run(box, opts) {
    const plan = await planRun(box.unpacked, { ...(opts.args ? { args: [...opts.args] } : {}), ...(opts.env ? { env: [...opts.env] } : {}) });
    const r = await runPlanIsolated(plan, { stdio: 'pipe' });
    return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
  },
};

/** node:wasi, wasmtime and wazero set up as runwasi does, which must agree with one another. */
export const wasiEngines: BoxEngine = {
  name: 'WASI engines (node:wasi, wasmtime, wazero)',
  async run(box, opts) {
    const r = await runBoxInEngines(box.layout, { reference: box.reference, ...(opts.args ? { args: [...opts.args] } : {}), ...(opts.env ? { env: [...opts.env] } : {}) });
    return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.results.map((x) => `[${x.engine}] ${x.stderr}`).join('') };
  },
};

/** The engines every differential test uses unless it names its own. */
export const DEFAULT_ENGINES: readonly BoxEngine[] = [boxproxyRun, wasiEngines];
