// Where the image's own Python lives and how it finds its packages, so the Box's CPython is placed to find the
// same: python.wasm sits beside the interpreter the image runs (a virtualenv's bin/, or <prefix>/bin), the
// runtime's stdlib at <prefix>/lib/pythonX.Y where the image's stdlib was, and the image's own site.py (same
// major.minor) decides the site-packages directories (Debian's dist-packages, official images' site-packages,
// a virtualenv's, with or without system packages). CPython's own start-up (getpath, site) then does the rest.
import { envValue } from './detect.js';
import { basename, type StrategyContext } from './strategies/types.js';
import type { FileNode, Inode } from './vfs.js';

/** The Box's interpreter prefix when the image's cannot be found (python:3.x images use it). */
export const FALLBACK_PREFIX = '/usr/local';

/** "3.11.9" / "3.11" / "python3.11" -> "3.11"; undefined without a major.minor. */
export function majorMinor(version: string): string | undefined {
  const m = /(\d+)\.(\d+)/.exec(version);
  return m ? `${m[1]}.${m[2]}` : undefined;
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

function fileAt(ctx: StrategyContext, path: string): FileNode | undefined {
  const hit = ctx.fs.resolve(path);
  return hit.ok && hit.node.type === 'file' ? hit.node : undefined;
}

/** /usr/local/lib/pythonX.Y and /usr/lib/pythonX.Y that hold a stdlib (os.py). */
export function imageStdlibDirs(ctx: StrategyContext): string[] {
  const out: string[] = [];
  for (const libDir of ['/usr/local/lib', '/usr/lib']) {
    const dir = ctx.fs.get(libDir.slice(1).split('/'));
    if (dir?.type !== 'dir') continue;
    for (const [name, node] of dir.children) {
      if (/^python\d+\.\d+$/.test(name) && node.type === 'dir' && node.children.has('os.py')) out.push(`${libDir}/${name}`);
    }
  }
  return out.sort();
}

/** The image's Python version: PYTHON_VERSION (official images), the interpreter's name, or its stdlib directory. */
export function imagePythonVersion(ctx: StrategyContext, names: ReadonlyArray<string | undefined>): string {
  const fromEnv = envValue(ctx.detection.env, 'PYTHON_VERSION');
  if (fromEnv && /^\d+\.\d+/.test(fromEnv)) return fromEnv;
  for (const name of names) {
    const m = name ? /^python(\d+\.\d+)/.exec(basename(name)) : null;
    if (m?.[1]) return m[1];
  }
  const versions = imageStdlibDirs(ctx).map((d) => basename(d).slice('python'.length));
  versions.sort((a, b) => Number(b.split('.')[1]) - Number(a.split('.')[1]));
  return versions[0] ?? '';
}

export interface Virtualenv {
  /** sys.prefix inside it: the directory holding bin/ (and pyvenv.cfg). */
  dir: string;
  /** `include-system-site-packages = true`. */
  systemSitePackages: boolean;
  /** Its pyvenv.cfg, kept in the Box: CPython reads it at start-up. */
  configPath: string;
}

export interface PythonLayout {
  /** Where python.wasm goes in the Box. */
  modulePath: string;
  /** The image interpreter's base prefix: the runtime's stdlib goes to <prefix>/lib/pythonX.Y. */
  prefix: string;
  venv?: Virtualenv;
  /**
   * The image's site.py at <prefix>/lib/python<runtime X.Y>/site.py when it differs from the runtime's (Debian's
   * lists dist-packages): used instead, with `-X frozen_modules=off` (CPython 3.11+ runs a frozen copy of its own
   * site.py otherwise).
   */
  siteModule?: { path: string; inode: Inode };
  /** Image files inside the replaced stdlib (or outside the app) that the Box keeps: site.py, sitecustomize, pyvenv.cfg. */
  keptFiles: string[];
  notes: string[];
}

/** Hooks of the image's own installation that its site module imports from the stdlib directory. */
const CUSTOMIZE_MODULES = ['sitecustomize.py', 'usercustomize.py'];

/** Parses pyvenv.cfg's `key = value` lines. */
export function parsePyvenvCfg(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out.set(line.slice(0, eq).trim().toLowerCase(), line.slice(eq + 1).trim());
  }
  return out;
}

/** CPython's getpath landmark search: the nearest ancestor of `dir` holding lib/python<minor>/os.py. */
function searchPrefix(ctx: StrategyContext, dir: string, minor: string): string | undefined {
  for (let d = dir; ; d = parentOf(d)) {
    const prefix = d === '/' ? '' : d;
    if (fileAt(ctx, `${prefix}/lib/python${minor}/os.py`)) return prefix || '/';
    if (d === '/') return undefined;
  }
}

/**
 * The layout of the interpreter the image runs: `invoked` is its path as exec'd (PATH lookup or shebang, before
 * symlinks: a venv's bin/python), `real` the file it resolves to; `imageMinor` the image's Python X.Y.
 */
export async function pythonLayout(
  ctx: StrategyContext,
  invoked: string | undefined,
  real: string | undefined,
  imageMinor: string | undefined,
  runtime: { minor: string; siteSource: Buffer | undefined },
): Promise<PythonLayout> {
  const runtimeMinor = runtime.minor;
  const notes: string[] = [];
  const minor = imageMinor ?? runtimeMinor;
  let venv: Virtualenv | undefined;
  let home: string | undefined;
  if (invoked) {
    // getpath looks for pyvenv.cfg beside the executable and one level up; sys.prefix is bin/'s parent.
    const binDir = parentOf(invoked);
    for (const candidate of [`${binDir}/pyvenv.cfg`, `${parentOf(binDir)}/pyvenv.cfg`]) {
      const node = fileAt(ctx, candidate);
      if (!node?.inode.content) continue;
      const cfg = parsePyvenvCfg((await ctx.readFile(node.inode)).toString('utf8'));
      venv = { dir: parentOf(binDir), systemSitePackages: cfg.get('include-system-site-packages')?.toLowerCase() === 'true', configPath: candidate };
      home = cfg.get('home');
      break;
    }
  }
  const searchFrom = home ?? (real ? parentOf(real) : undefined);
  let prefix = searchFrom ? searchPrefix(ctx, searchFrom, minor) : undefined;
  if (!prefix) {
    prefix = FALLBACK_PREFIX;
    notes.push(`the image's Python ${minor} stdlib (lib/python${minor}/os.py) was not found from ${searchFrom ?? 'its interpreter'}; the runtime goes to ${FALLBACK_PREFIX}`);
  }
  const modulePath = `${venv ? venv.dir : prefix === '/' ? '' : prefix}/bin/python.wasm`;
  const layout: PythonLayout = { modulePath, prefix, keptFiles: venv ? [venv.configPath] : [], notes, ...(venv ? { venv } : {}) };
  const stdlibDir = `${prefix === '/' ? '' : prefix}/lib/python${runtimeMinor}`;
  for (const name of CUSTOMIZE_MODULES) {
    if (ctx.fs.get(`${stdlibDir}/${name}`.slice(1).split('/'))) layout.keptFiles.push(`${stdlibDir}/${name}`);
  }
  const sitePath = `${stdlibDir}/site.py`;
  const site = fileAt(ctx, sitePath);
  if (site?.inode.content && !(runtime.siteSource && (await ctx.readFile(site.inode)).equals(runtime.siteSource))) {
    layout.siteModule = { path: sitePath, inode: site.inode };
    layout.keptFiles.push(sitePath);
    notes.push(`the image's own ${sitePath} decides the site-packages directories (run with -X frozen_modules=off)`);
  }
  if (venv) notes.push(`virtualenv ${venv.dir} (${venv.configPath}${venv.systemSitePackages ? ', with system site-packages' : ''})`);
  return layout;
}
