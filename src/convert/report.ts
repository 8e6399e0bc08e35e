import type { FlattenNote, LayerStats } from './flatten.js';
import type { DroppedSummary } from './assemble.js';
import type { TrialReport } from './trial.js';

export type Stage = 'resolve' | 'flatten' | 'detect' | 'plan' | 'assemble' | 'trial';

export interface StrategyVerdict {
  strategy: string;
  /** "chosen", "declined" (with the reason) or "not tried" (an earlier strategy was chosen). */
  verdict: 'chosen' | 'declined' | 'not tried';
  reason?: string;
}

/** The JSON conversion report (`boxproxy convert` prints it). */
export interface ConversionReport {
  converterVersion: string;
  /** The gzip implementation that wrote the Box's layers (their bytes depend on it). */
  gzip?: string;
  source: {
    name: string;
    reference: string;
    /** The image manifest converted (for an index: the platform's manifest). */
    digest?: string;
    indexDigest?: string;
    platform?: string;
    layers: LayerStats[];
  };
  /** Effective argv (Entrypoint + Cmd, shell form unwrapped). */
  argv: string[];
  shell?: { script: string; simple: boolean; reason?: string };
  target?: { path: string; resolvedPath: string; kind: string };
  strategies: StrategyVerdict[];
  chosen?: string;
  /** Why there is no Box. */
  unconvertible?: string;
  box?: { digest: string; layers: Array<{ title: string; digest: string; size: number }> };
  sizes: {
    /** Compressed bytes of the source layers, as pulled. */
    sourceCompressed: number;
    /** Uncompressed tar bytes of the source layers. */
    sourceUncompressed: number;
    /** Bytes of regular files in the final image filesystem. */
    sourceFiles?: number;
    boxCompressed?: number;
    boxUncompressed?: number;
    boxFiles?: number;
  };
  dropped: DroppedSummary[];
  /** The Box's interpreter loading what the app loads: what was tried, what passed, the errors. */
  trial?: TrialReport;
  /** Entries skipped while flattening (hostile, unsupported) and other per-entry remarks. */
  skipped: Array<{ layer: number; path?: string; reason: string }>;
  skippedOmitted: number;
  notes: string[];
  /** Milliseconds per stage. */
  timings: Partial<Record<Stage, number>>;
}

export function emptyReport(name: string, reference: string, converterVersion: string): ConversionReport {
  return {
    converterVersion,
    source: { name, reference, layers: [] },
    argv: [],
    strategies: [],
    sizes: { sourceCompressed: 0, sourceUncompressed: 0 },
    dropped: [],
    skipped: [],
    skippedOmitted: 0,
    notes: [],
    timings: {},
  };
}

export function addSkipped(report: ConversionReport, notes: readonly FlattenNote[], omitted: number): void {
  report.skipped.push(...notes);
  report.skippedOmitted += omitted;
}

/** Runs a stage and records its wall time in the report, also when it throws. */
export async function timed<T>(report: ConversionReport, stage: Stage, run: () => Promise<T> | T): Promise<T> {
  const start = process.hrtime.bigint();
  try {
    return await run();
  } finally {
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    report.timings[stage] = Math.round(((report.timings[stage] ?? 0) + ms) * 10) / 10;
  }
}
