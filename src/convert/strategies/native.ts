import { describeKind } from '../detect.js';
import { checkWasiCommand } from '../wasm-imports.js';
import { basename, type PlanOutcome, type Strategy, type StrategyContext } from './types.js';

/** The last word: never a Box, always the precise reason why not. */
export const native: Strategy = {
  name: 'native',
  async plan(ctx: StrategyContext): Promise<PlanOutcome> {
    const { detection } = ctx;
    const target = detection.target;
    if (!target) return { reason: detection.problem ?? 'the image has no Entrypoint or Cmd' };
    const where = target.resolvedPath !== target.path ? `${target.path} (-> ${target.resolvedPath})` : target.path;
    const kind = target.kind;
    switch (kind.kind) {
      case 'elf':
        return { reason: `${where} is ${describeKind(kind)}; no Wasm build of it is known` };
      case 'script': {
        let interpreter = basename(kind.interpreter);
        if (interpreter === 'env' && kind.arg) interpreter = kind.arg.split(/\s+/).find((w) => !w.startsWith('-')) ?? interpreter;
        return { reason: `${where} is a script for ${kind.interpreter}${kind.arg ? ' ' + kind.arg : ''}; no Wasm build of ${interpreter} is known` };
      }
      case 'wasm-module': {
        if (target.inode.dropped || !target.inode.content) return { reason: `${where} is a Wasm core module that was not kept` };
        const check = checkWasiCommand(await ctx.readFile(target.inode));
        return { reason: check.ok ? `${where} is a WASI module but no strategy accepted it` : `${where} is a Wasm core module that ${check.reason}; only WASI preview1 commands run` };
      }
      case 'wasm-component':
        return { reason: `${where} is a WebAssembly component (WASI preview 2); Node's WASI runs only preview1 core modules` };
      default:
        return { reason: `${where} is ${describeKind(kind)}` };
    }
  },
};
