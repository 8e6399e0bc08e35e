// The engines a differential test runs Boxes with. An engine is a parameter: node:wasi (what `boxproxy run`
// uses) is here; wasmtime and wazero runners plug in with the same shape.
import { planRun, runPlanIsolated } from '../../src/box/runner.js';
import type { UnpackedBox } from '../../src/box/layout.js';
import type { RunOutput } from './native.js';

export interface BoxRunOptions {
  /** Replace the Box's Cmd, like `docker run BOX args…`. */
  args?: readonly string[];
  /** `NAME=value` entries over the Box's Env. */
  env?: readonly string[];
}

export interface BoxEngine {
  /** Shown in assertion messages. */
  name: string;
  run(box: UnpackedBox, opts: BoxRunOptions): Promise<RunOutput>;
}

/** `boxproxy run`: Node's WASI in a child process, the rootfs preopened as /. */
export const nodeWasi: BoxEngine = {
  name: 'node:wasi',
  async run(box, opts) {
    const plan = await planRun(box, { ...(opts.args ? { args: [...opts.args] } : {}), ...(opts.env ? { env: [...opts.env] } : {}) });
    const r = await runPlanIsolated(plan, { stdio: 'pipe' });
    return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
  },
};

/** The engines every differential test uses unless it names its own. */
export const DEFAULT_ENGINES: readonly BoxEngine[] = [nodeWasi];
