import { rm } from 'node:fs/promises';
import { ImageError } from '../image/errors.js';
import { isDigest } from '../oci/digest.js';
import { assembleBox, type BoxArtifact } from './assemble.js';
import { describeKind, detect, type Detection } from './detect.js';
import { ConvertError } from './errors.js';
import { flattenLayers, type FlattenLimits } from './flatten.js';
import { pickGzip, type GzipCodec } from './gzip/index.js';
import { addSkipped, emptyReport, timed, type ConversionReport, type Stage } from './report.js';
import { DEFAULT_PLATFORMS, resolveImage } from './resolve.js';
import type { RuntimeCatalog, RuntimeNeed } from './runtimes.js';
import type { ImageSource } from '../image/source.js';
import { STRATEGIES } from './strategies/index.js';
import { isPlan, type Strategy, type StrategyContext, type StrategyPlan } from './strategies/types.js';
import { CONVERTER_VERSION } from './version.js';
import { readContent } from './pack.js';
import { DEFAULT_TRIAL_LIMITS, runTrial, trialFailureReason, type TrialLimits, type TrialSpec } from './trial.js';
import type { Inode } from './vfs.js';

export { writeBoxToOciLayout, type BoxArtifact } from './assemble.js';
export type { ConversionReport } from './report.js';
export type { RuntimeCatalog } from './runtimes.js';

export interface ProgressEvent {
  stage: Stage;
  /** flatten: which layer (0-based) of how many, and its compressed bytes read so far of its size. */
  layer?: number;
  layers?: number;
  bytes?: number;
  totalBytes?: number;
  message?: string;
}

export interface ConvertOptions {
  /** Platform preference for an index ("os/arch[/variant]"); default linux/amd64, linux/arm64, then the first. */
  platforms?: string[];
  limits?: Partial<FlattenLimits>;
  /** Scratch space; the caller removes it. */
  workDir: string;
  runtimes: RuntimeCatalog;
  onProgress?: (e: ProgressEvent) => void;
  /** Strategies to try, in order (default: wasi-module, wasm-runtime-wrapper, ruby, native). */
  strategies?: readonly Strategy[];
  /** Writes the Box's gzip layers (default: igzip when installed, else Node's zlib); source layers are read with zlib. */
  gzip?: GzipCodec;
  /** Limits of the trial run of the Box's interpreter (src/convert/trial.ts); false skips the trial. */
  trial?: Partial<TrialLimits> | false;
}

export type ConvertResult =
  | { kind: 'box'; box: BoxArtifact; report: ConversionReport }
  /** `needs`: the refusal is only a runtime the catalog lacks (a proxy obtains it and converts again). */
  | { kind: 'unconvertible'; reason: string; report: ConversionReport; needs?: RuntimeNeed };

/** Runs the plan's trial; returns the refusal when a probe failed and the strategy refuses on failure. */
async function trialStage(box: BoxArtifact, plan: StrategyPlan, report: ConversionReport, opts: ConvertOptions): Promise<string | undefined> {
  const spec = plan.trial as TrialSpec;
  opts.onProgress?.({ stage: 'trial', message: `${spec.probes.length} probe(s)` });
  const limits: TrialLimits = { ...DEFAULT_TRIAL_LIMITS, ...(opts.trial || {}) };
  const trial = await timed(report, 'trial', async () => {
    try {
      return await runTrial(box, spec, opts.workDir, limits);
    } finally {
      await rm(`${opts.workDir}/trial`, { recursive: true, force: true });
    }
  });
  report.trial = trial;
  if (trial.failed.length === 0) return undefined;
  const reason = trialFailureReason(trial);
  if (spec.onFailure === 'warn') {
    report.notes.push(`WARNING: ${reason}; the Box was kept (the strategy warns instead of refusing)`);
    return undefined;
  }
  report.unconvertible = reason;
  return reason;
}

function sourceLabel(name: string, reference: string): string {
  if (reference === '') return name;
  return isDigest(reference) ? `${name}@${reference}` : `${name}:${reference}`;
}

/**
 * Converts one image into a Box, or says precisely why not. Refusals (hostile or over-limit layers, formats we
 * do not read, workloads without a Wasm route) come back as `unconvertible`; failing to obtain the image throws.
 */
export async function convertImage(source: ImageSource, reference: string, opts: ConvertOptions): Promise<ConvertResult> {
  const report = emptyReport(source.name, reference, CONVERTER_VERSION);
  const progress = opts.onProgress;
  const gzip = opts.gzip ?? (await pickGzip('auto'));
  report.gzip = gzip.name;
  try {
    progress?.({ stage: 'resolve', message: sourceLabel(source.name, reference) });
    const image = await timed(report, 'resolve', () => resolveImage(source, reference, opts.platforms ?? DEFAULT_PLATFORMS));
    report.source.digest = image.manifest.digest;
    if (image.index) report.source.indexDigest = image.index.digest;
    report.source.platform = image.platform;

    const flat = await timed(report, 'flatten', async () => {
      try {
        return await flattenLayers(source, image.layers, {
          workDir: opts.workDir,
          ...(opts.limits ? { limits: opts.limits } : {}),
          ...(progress
            ? { onProgress: (p) => progress({ stage: 'flatten', layer: p.layer, layers: p.layers, bytes: p.compressedBytes, totalBytes: p.compressedTotal }) }
            : {}),
        });
      } catch (err) {
        if (err instanceof ImageError && err.refusal) {
          report.skipped.push({ layer: -1, reason: err.message });
        }
        throw err;
      }
    });
    report.source.layers = flat.layers;
    report.sizes.sourceCompressed = flat.layers.reduce((n, l) => n + l.compressedBytes, 0);
    report.sizes.sourceUncompressed = flat.layers.reduce((n, l) => n + l.tarBytes, 0);
    let sourceFiles = 0;
    const seen = new Set<number>();
    for (const { node } of flat.fs.walk()) {
      if (node.type === 'file' && !seen.has(node.inode.id)) {
        seen.add(node.inode.id);
        sourceFiles += node.inode.size;
      }
    }
    report.sizes.sourceFiles = sourceFiles;
    addSkipped(report, flat.notes, flat.notesOmitted);

    progress?.({ stage: 'detect' });
    const detection: Detection = await timed(report, 'detect', () => detect(flat.fs, image.config));
    report.argv = detection.argv;
    if (detection.shell) {
      report.shell = { script: detection.shell.script, simple: detection.shell.simple };
      if (detection.shell.reason) report.shell.reason = detection.shell.reason;
    }
    if (detection.target) {
      report.target = { path: detection.target.path, resolvedPath: detection.target.resolvedPath, kind: describeKind(detection.target.kind) };
    }

    progress?.({ stage: 'plan' });
    const ctx: StrategyContext = {
      fs: flat.fs,
      config: image.config,
      detection,
      runtimes: opts.runtimes,
      workDir: opts.workDir,
      readFile: async (inode: Inode) => {
        if (!inode.content) throw new ConvertError('LAYER_CORRUPT', `file content was not kept (${inode.dropped ?? 'unknown'})`);
        return readContent(inode.content);
      },
    };
    let plan: StrategyPlan | undefined;
    let refusal: { reason: string; needs?: RuntimeNeed } | undefined;
    let lastReason: string | undefined;
    await timed(report, 'plan', async () => {
      for (const strategy of opts.strategies ?? STRATEGIES) {
        if (plan) {
          report.strategies.push({ strategy: strategy.name, verdict: 'not tried' });
          continue;
        }
        const outcome = await strategy.plan(ctx);
        if (isPlan(outcome)) {
          plan = outcome;
          report.strategies.push({ strategy: strategy.name, verdict: 'chosen' });
        } else {
          report.strategies.push({ strategy: strategy.name, verdict: 'declined', reason: outcome.reason });
          if (outcome.recognized) refusal ??= outcome;
          lastReason = outcome.reason;
        }
      }
    });
    if (!plan) {
      const reason = refusal?.reason ?? lastReason ?? 'no strategy applies';
      report.unconvertible = reason;
      return { kind: 'unconvertible', reason, report, ...(refusal?.needs ? { needs: refusal.needs } : {}) };
    }
    const chosen: StrategyPlan = plan;
    report.chosen = chosen.strategy;
    report.notes.push(...chosen.notes);

    progress?.({ stage: 'assemble' });
    const assembled = await timed(report, 'assemble', () =>
      assembleBox({
        plan: chosen,
        fs: flat.fs,
        sourceConfig: image.config,
        sourceManifest: image.manifest,
        sourceName: sourceLabel(source.name, reference),
        workDir: opts.workDir,
        gzip,
      }),
    );
    // The pack files are only needed until the layers are written.
    await rm(`${opts.workDir}/flatten`, { recursive: true, force: true });
    const box = assembled.box;
    const trialRefusal = chosen.trial && opts.trial !== false ? await trialStage(box, chosen, report, opts) : undefined;
    if (trialRefusal) return { kind: 'unconvertible', reason: trialRefusal, report };
    report.box = {
      digest: box.manifest.digest,
      layers: box.layers.map((l) => ({
        title: l.descriptor.annotations?.['org.opencontainers.image.title'] ?? '',
        digest: l.descriptor.digest,
        size: l.descriptor.size,
      })),
    };
    report.sizes.boxCompressed = box.layers.reduce((n, l) => n + l.descriptor.size, 0) + box.config.bytes.length + box.manifest.bytes.length;
    report.sizes.boxUncompressed = assembled.moduleTarBytes + assembled.rootfsTarBytes;
    report.sizes.boxFiles = assembled.rootfsFileBytes;
    report.dropped = assembled.dropped;
    if (assembled.symlinksRewritten > 0) report.notes.push(`${assembled.symlinksRewritten} symlink(s) with absolute or escaping targets rewritten relative, to resolve inside the Box root`);
    return { kind: 'box', box, report };
  } catch (err) {
    if (err instanceof ImageError && err.refusal) {
      report.unconvertible = err.message;
      return { kind: 'unconvertible', reason: err.message, report };
    }
    throw err;
  }
}
