// Where the tools of test/setup/tools.txt are: test/setup/tools.sh installs each at its pinned version into
// ${BOXPROXY_TOOLS_CACHE:-${XDG_CACHE_HOME:-~/.cache}/boxproxy/tools}/<name>-<version>/ (bin/<name> for Go tools,
// a pip --target directory for the wasmtime wheel). Tests never use another copy found on PATH.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export type ToolName = 'oras' | 'cosign' | 'crane' | 'wazero' | 'distribution' | 'wasmtime';

export interface ToolSpec {
  name: ToolName;
  version: string;
  kind: 'go' | 'pypi';
  /** `go install` path of the command, or the PyPI package. */
  source: string;
  /** `test`: installed for npm test; `bench`: by npm run bench (`tools.sh --bench`). */
  purpose: 'test' | 'bench';
}

/** A file of the source tree, from test/helpers in the sources or from dist/test/helpers when built (bench). */
export function repoFile(path: string): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return join(here, here.includes(`${sep}dist${sep}test${sep}`) ? '../../..' : '../..', path);
}

const TOOLS_FILE = repoFile('test/setup/tools.txt');

/** test/setup/tools.txt, the one list of names and pinned versions (tools.sh reads the same file). */
export function toolSpecs(): ToolSpec[] {
  const specs: ToolSpec[] = [];
  for (const line of readFileSync(TOOLS_FILE, 'utf8').split('\n')) {
    const [name, version, kind, source, purpose] = line.trim().split(/\s+/);
    if (!name || name.startsWith('#') || !version || !source || (kind !== 'go' && kind !== 'pypi')) continue;
    specs.push({ name: name as ToolName, version, kind, source, purpose: purpose === 'bench' ? 'bench' : 'test' });
  }
  return specs;
}

export function toolSpec(name: ToolName): ToolSpec {
  const spec = toolSpecs().find((s) => s.name === name);
  if (!spec) throw new Error(`${name} is not listed in test/setup/tools.txt`);
  return spec;
}

export function toolsCacheDir(): string {
  return process.env.BOXPROXY_TOOLS_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'boxproxy', 'tools');
}

/** The tool's install directory (it holds `.installed` once tools.sh finished it). */
export function toolDir(name: ToolName): string {
  const spec = toolSpec(name);
  return join(toolsCacheDir(), `${spec.name}-${spec.version}`);
}

/** Path of a Go tool's binary. */
export function toolBin(name: Exclude<ToolName, 'wasmtime'>): string {
  return join(toolDir(name), 'bin', name);
}

/** PYTHONPATH entry holding the wasmtime wheel. */
export function wasmtimePythonPath(): string {
  return toolDir('wasmtime');
}

/** The Python that runs the wasmtime wheel: the interpreter tools.sh checked it imports in. */
export function python(): string {
  if (process.env.BOXPROXY_PYTHON) return process.env.BOXPROXY_PYTHON;
  const recorded = join(toolDir('wasmtime'), '.python');
  return existsSync(recorded) ? readFileSync(recorded, 'utf8').trim() || 'python3' : 'python3';
}

export function hasInstalledTool(name: ToolName): boolean {
  return existsSync(join(toolDir(name), '.installed'));
}

export class MissingTestToolError extends Error {
  constructor(readonly tools: ToolName[]) {
    const bench = tools.some((t) => toolSpec(t).purpose === 'bench');
    super(`missing ${tools.map((t) => `${t} ${toolSpec(t).version}`).join(', ')} in ${toolsCacheDir()}: run bash test/setup/tools.sh${bench ? ' --bench (npm run bench does)' : ' (npm test does)'}`);
    this.name = 'MissingTestToolError';
  }
}

/** Throws unless every tool is installed (right before using them). */
export function requireTestTools(...tools: ToolName[]): void {
  const missing = tools.filter((t) => !hasInstalledTool(t));
  if (missing.length) throw new MissingTestToolError(missing);
}

/**
 * The `skip` value for a suite needing these tools: false when all are installed, a reason otherwise; under CI a
 * missing tool is a failure, never a skip, so this throws.
 */
export function skipUnlessTestTools(...tools: ToolName[]): string | false {
  const missing = tools.filter((t) => !hasInstalledTool(t));
  if (missing.length === 0) return false;
  if (process.env.CI) throw new MissingTestToolError(missing);
  return new MissingTestToolError(missing).message;
}
