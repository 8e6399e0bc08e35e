import { describeKind } from '../detect.js';
import { checkWasiCommand } from '../wasm-imports.js';
import { splitArgs, type PlanOutcome, type Strategy, type StrategyContext } from './types.js';

/** argv[0] is itself a WASI preview1 core module: the Box runs it directly. */
export const wasiModule: Strategy = {
  name: 'wasi-module',
  async plan(ctx: StrategyContext): Promise<PlanOutcome> {
    const { detection } = ctx;
    const target = detection.target;
    if (!target) return { reason: detection.problem ?? 'no entrypoint' };
    if (target.kind.kind !== 'wasm-module') return { reason: `${target.path} is ${describeKind(target.kind)}, not a Wasm module` };
    const check = checkWasiCommand(await ctx.readFile(target.inode));
    if (!check.ok) return { reason: `${target.path} is a Wasm core module that ${check.reason}` };
    const { fixed, cmd } = splitArgs(detection.argv, detection.entrypointCount, 1);
    return {
      strategy: 'wasi-module',
      runner: 'wasi',
      modules: [{ boxPath: target.resolvedPath, from: { kind: 'image', inode: target.inode, imagePath: target.resolvedPath }, mode: target.inode.mode | 0o555 }],
      entrypoint: [target.resolvedPath, ...fixed],
      cmd,
      env: detection.env,
      workingDir: detection.workingDir,
      labels: {},
      excludePaths: [target.resolvedPath],
      notes: [],
    };
  },
};
