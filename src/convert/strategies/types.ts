import type { ImageConfig } from '../../oci/types.js';
import type { Detection } from '../detect.js';
import type { RuntimeCatalog, RuntimeNeed } from '../runtimes.js';
import type { TrialSpec } from '../trial.js';
import type { Inode, VirtualFs } from '../vfs.js';

export interface StrategyContext {
  fs: VirtualFs;
  config: ImageConfig;
  detection: Detection;
  runtimes: RuntimeCatalog;
  /** Scratch directory of this conversion (removed by the caller), for files a strategy generates. */
  workDir: string;
  /** A kept image file's bytes (rejects when the file was dropped while flattening). */
  readFile(inode: Inode): Promise<Buffer>;
}

/** A file that goes into the Box's module layer. */
export interface BoxModule {
  /** Absolute path inside the Box. */
  boxPath: string;
  from: { kind: 'image'; inode: Inode; imagePath: string } | { kind: 'host'; path: string };
  mode: number;
}

export type BoxRunner = 'wasi' | 'ruby.wasm';

export interface StrategyPlan {
  strategy: string;
  runner: BoxRunner;
  /** Module layer contents (layer 1). */
  modules: BoxModule[];
  /** [module path inside the Box, ...arguments the image fixed in its Entrypoint]. */
  entrypoint: string[];
  /** Replaceable arguments (the image's Cmd part). */
  cmd: string[];
  env: string[];
  workingDir: string;
  /** Extra `dev.boxproxy.*` labels the runner needs. */
  labels: Record<string, string>;
  /** Image paths left out of the rootfs layer (moved into the module layer). */
  excludePaths: string[];
  notes: string[];
  /** What the assembled Box's interpreter must load before the Box is kept (src/convert/trial.ts). */
  trial?: TrialSpec;
}

/**
 * `recognized`: the strategy knew the workload but cannot convert it, so its reason is the one to report.
 * `needs`: what it lacked was a runtime the catalog does not hold; once obtained, the conversion runs again.
 */
export type PlanOutcome = StrategyPlan | { reason: string; recognized?: boolean; needs?: RuntimeNeed };

export interface Strategy {
  name: string;
  plan(ctx: StrategyContext): Promise<PlanOutcome>;
}

export function isPlan(outcome: PlanOutcome): outcome is StrategyPlan {
  return 'strategy' in outcome;
}

/**
 * Splits the arguments that follow the module (argv[first..]) into what the image fixed (its Entrypoint part,
 * argv[0..entrypointCount)) and what `docker run` arguments replace (the Cmd part).
 */
export function splitArgs(argv: readonly string[], entrypointCount: number, first: number): { fixed: string[]; cmd: string[] } {
  const boundary = Math.max(first, entrypointCount);
  return { fixed: argv.slice(first, boundary), cmd: argv.slice(boundary) };
}

export function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
