// Decide by trial: after assembling a Box, run its own interpreter once, in a sandbox, on a scratch copy of the
// Box's files, loading what the static scan says the app loads. The interpreter's answer decides, and the report
// says what was tried and what passed. A strategy states what to try as a TrialSpec; this stage is the same for
// every language: unpack the Box into the work dir, run Entrypoint[0] with the spec's command under node:wasi
// in a child process (no network: WASI preview1 has no sockets; only the scratch rootfs is preopened), bounded
// in time and memory, and read one marked JSON line per probe.
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { resolveBox, unpackBox } from '../box/layout.js';
import { planRun, runPlanIsolated } from '../box/runner.js';
import type { ImageSource } from '../image/source.js';
import type { BoxArtifact } from './assemble.js';

export interface TrialSpec {
  /** For the report: "python", "ruby". */
  language: string;
  /** What is tried, in order, as the language writes it ("import numpy", "require 'rack'"). */
  probes: string[];
  /**
   * The arguments after the module (replacing the Box's Entrypoint[1..] and Cmd): a program that tries each
   * probe and prints, per probe, one line `<marker> {"probe": …, "ok": true|false, "error"?: …, "cause"?: …}`.
   * The marker is random per run, so nothing the app's code prints can pass for an answer.
   */
  command(marker: string): string[];
  /** What a failed probe does: `refuse` (no Box, the interpreter's error is the reason) or `warn` (a note). */
  onFailure: 'refuse' | 'warn';
}

export interface TrialLimits {
  timeoutMs: number;
  /** Resident memory of the trial's process. */
  maxRssBytes: number;
}

export const DEFAULT_TRIAL_LIMITS: TrialLimits = { timeoutMs: 60_000, maxRssBytes: 1024 * 1024 * 1024 };

export interface ProbeResult {
  probe: string;
  ok: boolean;
  /** The interpreter's own words: the exception, and its root cause when chained. */
  error?: string;
  cause?: string;
}

export interface TrialReport {
  language: string;
  tried: string[];
  passed: string[];
  failed: ProbeResult[];
  /** How the interpreter ended, and its stderr's tail when a probe got no answer. */
  exitCode: number;
  killed?: 'timeout' | 'memory';
  stderrTail?: string;
  ms: number;
}

/** The assembled Box read as an image source (its blobs are in memory or in the work dir). */
function artifactSource(box: BoxArtifact): ImageSource {
  const files = new Map(box.layers.map((l) => [l.descriptor.digest, l.path]));
  return {
    name: 'trial',
    async getManifest() {
      return box.manifest;
    },
    async openBlob(digest: string) {
      if (digest === box.config.digest) return Readable.from([box.config.bytes]);
      const path = files.get(digest);
      if (!path) throw new Error(`the Box has no blob ${digest}`);
      return createReadStream(path);
    },
  };
}

function parseAnswers(stdout: string, marker: string): Map<string, ProbeResult> {
  const out = new Map<string, ProbeResult>();
  for (const line of stdout.split('\n')) {
    if (!line.startsWith(marker + ' ')) continue;
    try {
      const r = JSON.parse(line.slice(marker.length + 1)) as ProbeResult;
      if (typeof r.probe === 'string' && typeof r.ok === 'boolean') out.set(r.probe, r);
    } catch {
      // Not an answer line after all.
    }
  }
  return out;
}

/** Runs the trial of `box`; its files are unpacked under `workDir`/trial (the caller removes the work dir). */
export async function runTrial(box: BoxArtifact, spec: TrialSpec, workDir: string, limits: TrialLimits = DEFAULT_TRIAL_LIMITS): Promise<TrialReport> {
  const started = Date.now();
  const source = artifactSource(box);
  const unpacked = await unpackBox(source, await resolveBox(source, ''), { cacheDir: join(workDir, 'trial') });
  const plan = await planRun(unpacked);
  const marker = `boxproxy-trial-${randomBytes(8).toString('hex')}`;
  plan.args = [plan.args[0] as string, ...spec.command(marker)];
  const run = await runPlanIsolated(plan, { stdio: 'pipe', timeoutMs: limits.timeoutMs, maxRssBytes: limits.maxRssBytes });
  const answers = parseAnswers(run.stdout, marker);
  const report: TrialReport = { language: spec.language, tried: [...spec.probes], passed: [], failed: [], exitCode: run.exitCode, ms: Date.now() - started };
  if (run.killed) report.killed = run.killed;
  for (const probe of spec.probes) {
    const answer = answers.get(probe);
    if (answer?.ok) report.passed.push(probe);
    else report.failed.push(answer ?? { probe, ok: false, error: noAnswer(run, limits) });
  }
  if (report.failed.some((f) => !answers.has(f.probe))) report.stderrTail = run.stderr.slice(-2000);
  return report;
}

function noAnswer(run: { exitCode: number; killed?: 'timeout' | 'memory'; stderr: string }, limits: TrialLimits): string {
  if (run.killed === 'timeout') return `no answer: the trial ran past ${limits.timeoutMs} ms`;
  if (run.killed === 'memory') return `no answer: the trial used more than ${Math.round(limits.maxRssBytes / 1048576)} MiB`;
  const last = run.stderr.trim().split('\n').slice(-1)[0] ?? '';
  return `no answer: the interpreter exited with status ${run.exitCode}${last ? ` (${last})` : ''}`;
}

/** One line for a refusal: the first failure in the interpreter's words. */
export function trialFailureReason(report: TrialReport): string {
  const first = report.failed[0];
  if (!first) return '';
  const condense = (s: string): string => s.replace(/\s+/g, ' ').trim();
  const error = condense(first.error ?? 'failed');
  const cause = first.cause ? ` (caused by ${condense(first.cause)})` : '';
  const more = report.failed.length > 1 ? `; also failed: ${report.failed.slice(1).map((f) => f.probe).join(', ')}` : '';
  return `${first.probe}: ${error.length > 300 ? error.slice(0, 300) + '…' : error}${cause}${more} (tried in the Box's own ${report.language} interpreter: ${report.passed.length} of ${report.tried.length} passed)`;
}
