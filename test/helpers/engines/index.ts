// Every Box the test suite makes runs in three engines, node:wasi, wasmtime (the PyPI wheel) and wazero (its
// CLI), set up as runwasi would (engines/box.ts), and must print the same and exit the same in all of them.
import assert from 'node:assert/strict';
import { RUNNER_RUBY, RUNNER_WASI, type BoxRunnerName } from '../../../src/box/format.js';
import { loadBox } from '../../../src/box/layout.js';
import { planRun, runPlanIsolated } from '../../../src/box/runner.js';
import { OciLayoutSource } from '../../../src/image/oci-layout.js';
import { makeTempDir } from '../proc.js';
import { hasInstalledTool, MissingTestToolError, type ToolName } from '../tools.js';
import { engineRunSpec, readEngineBox, type BoxRunOptions, type EngineBox } from './box.js';
import { runInNodeWasi } from './node-wasi.js';
import { TRAP_EXIT_CODE, type EngineName, type EngineResult, type WasiRunSpec } from './types.js';
import { runInWasmtime } from './wasmtime.js';
import { runInWazero, wazeroArgv0 } from './wazero.js';

export { TRAP_EXIT_CODE, type BoxRunOptions, type EngineName, type EngineResult };

/**
 * The engines each kind of Box runs in: the one place to change when a kind of Box can run in more of them.
 * Ruby Boxes carry ruby.wasm from npm, a WASI reactor importing rb-js-abi-host (a JS host): no WASI engine can
 * instantiate it, only Node with @ruby/wasm-wasi (boxproxy's ruby.wasm runner). The `ruby` branch replaces it
 * with a CRuby WASI command; then this line becomes ['node:wasi', 'wasmtime', 'wazero'].
 */
export const ENGINES_BY_RUNNER: Readonly<Record<BoxRunnerName, readonly EngineName[]>> = {
  [RUNNER_WASI]: ['node:wasi', 'wasmtime', 'wazero'],
  [RUNNER_RUBY]: ['node:wasi'],
};

const TOOL_OF: Partial<Record<EngineName, ToolName>> = { wasmtime: 'wasmtime', wazero: 'wazero' };

let rubyCache: Promise<string> | undefined;

/** A reactor Box (npm's ruby.wasm) on Node needs the JS host: boxproxy's own ruby.wasm runner, the only one there is. */
async function runReactorOnNode(layout: string, reference: string, opts: BoxRunOptions): Promise<EngineResult> {
  rubyCache ??= makeTempDir('engine-ruby');
  const unpacked = await loadBox(new OciLayoutSource(layout), reference, { cacheDir: await rubyCache });
  const r = await runPlanIsolated(await planRun(unpacked, opts), { stdio: 'pipe' });
  return { engine: 'node:wasi', stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode };
}

function runIn(engine: EngineName, spec: WasiRunSpec): Promise<EngineResult> {
  if (engine === 'wasmtime') return runInWasmtime(spec);
  if (engine === 'wazero') return runInWazero(spec);
  return runInNodeWasi(spec);
}

function shown(r: EngineResult): string {
  return `${r.engine}: exit ${r.exitCode}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

/** Engines this Box kind runs in whose tools are installed; under CI a missing one is an error, never a skip. */
function enginesFor(box: EngineBox): EngineName[] {
  const wanted = ENGINES_BY_RUNNER[box.runner];
  const missing = wanted.flatMap((e) => (TOOL_OF[e] && !hasInstalledTool(TOOL_OF[e]) ? [TOOL_OF[e]] : []));
  if (missing.length) {
    const err = new MissingTestToolError(missing);
    if (process.env.CI) throw err;
    process.stderr.write(`engines: WARNING: ${err.message}; ${box.manifestDigest} runs without them\n`);
  }
  if (wanted.length < 3) {
    process.stderr.write(`engines: ${box.runner} Box ${box.manifestDigest} runs in ${wanted.join(', ')} only (ENGINES_BY_RUNNER)\n`);
  }
  return wanted.filter((e) => !TOOL_OF[e] || hasInstalledTool(TOOL_OF[e]));
}

export interface EnginesRun {
  /** What every engine printed and returned (they agree, or this threw). */
  stdout: string;
  exitCode: number;
  engines: EngineName[];
  results: EngineResult[];
}

/**
 * Runs the Box of an OCI layout in every engine its kind runs in and asserts identical stdout and exit status.
 * wazero's CLI always passes the module file's base name as argv[0]: it is compared against node:wasi given that
 * same argv[0], and the others run with the Box's own argv[0].
 */
export async function runBoxInEngines(layout: string, opts: BoxRunOptions & { reference?: string } = {}): Promise<EnginesRun> {
  const box = await readEngineBox(layout, opts.reference ?? '');
  const spec = await engineRunSpec(box, opts);
  const results: EngineResult[] = [];
  for (const engine of enginesFor(box)) {
    const jsHost = engine === 'node:wasi' && box.reactor && box.runner === RUNNER_RUBY;
    results.push(jsHost ? await runReactorOnNode(layout, opts.reference ?? '', opts) : await runIn(engine, spec));
  }
  const [first, ...rest] = results as [EngineResult, ...EngineResult[]];
  for (const r of rest) {
    if (r.engine === 'wazero' && wazeroArgv0(spec) !== spec.args[0]) {
      const node = await runInNodeWasi({ ...spec, args: [wazeroArgv0(spec), ...spec.args.slice(1)] });
      assert.deepEqual([r.stdout, r.exitCode], [node.stdout, node.exitCode], `wazero and node:wasi (argv[0] ${wazeroArgv0(spec)}) disagree\n${shown(r)}\n${shown(node)}`);
    } else {
      assert.deepEqual([r.stdout, r.exitCode], [first.stdout, first.exitCode], `${r.engine} and ${first.engine} disagree\n${shown(r)}\n${shown(first)}`);
    }
  }
  return { stdout: first.stdout, exitCode: first.exitCode, engines: results.map((r) => r.engine), results };
}

/**
 * The check every test that runs a Box adds: the Box, run in all its engines, prints what boxproxy's own run
 * printed (`product`) and exits the same. A Box whose only engine is boxproxy's own ruby.wasm host is not run a
 * second time by the same code; that is said on stderr (ENGINES_BY_RUNNER).
 */
export async function assertBoxRunsAlikeInEngines(
  layout: string,
  opts: BoxRunOptions & { reference?: string },
  product: { stdout: string; exitCode: number },
): Promise<EnginesRun | undefined> {
  const box = await readEngineBox(layout, opts.reference ?? '');
  const engines = ENGINES_BY_RUNNER[box.runner];
  if (box.reactor && engines.length === 1 && engines[0] === 'node:wasi') {
    process.stderr.write(`engines: ${box.runner} Box ${box.manifestDigest} ran in boxproxy's runner only, the one host ruby.wasm has (ENGINES_BY_RUNNER)\n`);
    return undefined;
  }
  const ran = await runBoxInEngines(layout, opts);
  assert.equal(ran.stdout, product.stdout, `the engines (${ran.engines.join(', ')}) print what boxproxy's runner printed`);
  assert.equal(ran.exitCode, product.exitCode, `the engines (${ran.engines.join(', ')}) exit as boxproxy's runner did`);
  return ran;
}
