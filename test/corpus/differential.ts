// Differential testing: a corpus image's native run is the oracle; its Box, converted by the real pipeline and
// run by each engine, must print the same stdout and exit with the same status.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBox } from '../../src/box/layout.js';
import { convertImage, writeBoxToOciLayout, type ConvertResult, type RuntimeCatalog } from '../../src/convert/pipeline.js';
import { OciLayoutSource } from '../../src/image/oci-layout.js';
import { OciRuntimeCatalog } from '../../src/runtimes/catalog.js';
import type { BuiltImage } from './build.js';
import { corpusImage } from './corpus.js';
import { DEFAULT_ENGINES, type BoxEngine } from './engines.js';
import { runNative, type RunOutput } from './native.js';

export interface DifferentialOptions {
  /** Replace Cmd in both runs, like `docker run IMAGE args…`. */
  args?: readonly string[];
  /** `NAME=value` over the image's Env in both runs. */
  env?: readonly string[];
  engines?: readonly BoxEngine[];
  /** Default: the runtime catalog the test setup filled ($BOXPROXY_RUNTIME_CATALOG). */
  runtimes?: RuntimeCatalog;
}

export interface DifferentialResult {
  image: BuiltImage;
  native: RunOutput;
  conversion: ConvertResult;
  /** Per engine name; empty when the image was refused. */
  boxes: Map<string, RunOutput>;
}

let defaultRuntimes: RuntimeCatalog | undefined;

/** Runs the image natively, converts it, and runs the Box (when there is one) with each engine. */
export async function differential(name: string, opts: DifferentialOptions = {}): Promise<DifferentialResult> {
  const image = await corpusImage(name);
  const native = await runNative(image, { ...(opts.args ? { args: opts.args } : {}), ...(opts.env ? { env: opts.env } : {}) });
  const scratch = await mkdtemp(join(tmpdir(), `boxproxy-diff-${name}-`));
  try {
    const runtimes = opts.runtimes ?? (defaultRuntimes ??= OciRuntimeCatalog.fromOptions());
    const conversion = await convertImage(new OciLayoutSource(image.layout), name, { workDir: join(scratch, 'work'), runtimes });
    const boxes = new Map<string, RunOutput>();
    if (conversion.kind === 'box') {
      const boxDir = join(scratch, 'box');
      await writeBoxToOciLayout(conversion.box, boxDir, name);
      const unpacked = await loadBox(new OciLayoutSource(boxDir), name, { cacheDir: join(scratch, 'unpacked') });
      for (const engine of opts.engines ?? DEFAULT_ENGINES) {
        const input = { unpacked, layout: boxDir, reference: name };
        boxes.set(engine.name, await engine.run(input, { ...(opts.args ? { args: opts.args } : {}), ...(opts.env ? { env: opts.env } : {}) }));
      }
    }
    return { image, native, conversion, boxes };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

function describeRun(what: string, r: RunOutput): string {
  return `${what}: exit ${r.exitCode}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr.slice(-3000)}`;
}

/** The Box exists and, with every engine, prints exactly what the native run printed and exits the same. */
export function assertSameAsNative(d: DifferentialResult): void {
  const name = d.image.recipe.name;
  assert.equal(d.conversion.kind, 'box', `${name} was refused: ${d.conversion.kind === 'unconvertible' ? d.conversion.reason : ''}\n${describeRun('native', d.native)}`);
  for (const [engine, box] of d.boxes) {
    const detail = `${describeRun('native', d.native)}\n${describeRun(`Box under ${engine}`, box)}`;
    assert.equal(box.stdout, d.native.stdout, `${name}: the Box under ${engine} printed something else\n${detail}`);
    assert.equal(box.exitCode, d.native.exitCode, `${name}: the Box under ${engine} exited differently\n${detail}`);
  }
}

/** Converts and runs differentially; returns the result for further checks. */
export async function assertRunsLikeNative(name: string, opts: DifferentialOptions = {}): Promise<DifferentialResult> {
  const d = await differential(name, opts);
  assertSameAsNative(d);
  return d;
}

/** The image runs natively (exit 0) but is refused, with a reason matching `reason`. */
export async function assertRefused(name: string, reason: RegExp, opts: DifferentialOptions = {}): Promise<DifferentialResult> {
  const d = await differential(name, opts);
  assert.equal(d.native.exitCode, 0, `${name} should run natively\n${describeRun('native', d.native)}`);
  assert.equal(d.conversion.kind, 'unconvertible', `${name} should be refused, yet a Box was made`);
  if (d.conversion.kind === 'unconvertible') assert.match(d.conversion.reason, reason);
  return d;
}
