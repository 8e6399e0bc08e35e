// What a Python app imports, found statically, and the trial that tries those imports in the Box's own
// interpreter (src/convert/trial.ts runs it): the scan proposes, the interpreter decides.
import type { TrialSpec } from './trial.js';
import type { StrategyContext } from './strategies/types.js';
import type { DirNode, Inode } from './vfs.js';

const IMPORT_LINE = /^\s*import\s+([\w.]+(?:\s+as\s+\w+)?(?:\s*,\s*[\w.]+(?:\s+as\s+\w+)?)*)/;
const FROM_LINE = /^\s*from\s+([\w.]+)\s+import\b/;
const DYNAMIC_IMPORT = /(?:import_module|__import__)\(\s*['"]([\w.]+)['"]/g;

/** Top-level module names a Python source imports (static: import / from-import lines, literal dynamic imports). */
export function importedNames(source: string): string[] {
  const names = new Set<string>();
  for (const line of source.split('\n')) {
    const code = line.replace(/#.*/, '');
    const imp = IMPORT_LINE.exec(code);
    if (imp?.[1]) for (const part of imp[1].split(',')) names.add((part.trim().split(/\s+/)[0] as string).split('.')[0] as string);
    const from = FROM_LINE.exec(code);
    if (from?.[1]) names.add(from[1].split('.')[0] as string);
    for (const m of code.matchAll(DYNAMIC_IMPORT)) names.add((m[1] as string).split('.')[0] as string);
  }
  names.delete('');
  return [...names].sort();
}

/** Joins a statement's continuation lines (open brackets, trailing backslashes) into one logical line. */
function logicalLines(source: string): string[] {
  const out: string[] = [];
  let current = '';
  let depth = 0;
  for (const raw of source.split('\n')) {
    const line = raw.replace(/#.*/, '');
    const continued = line.endsWith('\\');
    current += (current ? ' ' : '') + (continued ? line.slice(0, -1) : line);
    for (const c of line) depth += c === '(' || c === '[' ? 1 : c === ')' || c === ']' ? -1 : 0;
    if (depth <= 0 && !continued) {
      out.push(current);
      current = '';
      depth = 0;
    }
  }
  if (current) out.push(current);
  return out;
}

/**
 * The import statements a module runs when it is loaded: those at column 0, normalized (`import a.b`,
 * `from x import y, z`; aliases dropped, relative imports resolved against `pkg`). Indented ones (under `try:`,
 * `if`, inside functions) are optional or lazy: the trial does not try them.
 */
export function moduleLevelImports(source: string, pkg = ''): string[] {
  const out: string[] = [];
  for (const line of logicalLines(source)) {
    if (/^\s/.test(line)) continue;
    const imp = /^import\s+(.+)$/.exec(line.trim());
    if (imp?.[1]) {
      for (const part of imp[1].split(',')) {
        const name = part.trim().split(/\s+/)[0];
        if (name && /^[\w.]+$/.test(name)) out.push(`import ${name}`);
      }
      continue;
    }
    const from = /^from\s+(\.*)([\w.]*)\s+import\s+(.+)$/.exec(line.trim());
    if (!from) continue;
    let module = from[2] ?? '';
    const dots = (from[1] ?? '').length;
    if (dots > 0) {
      const base = pkg.split('.').filter(Boolean);
      if (dots - 1 >= base.length) continue;
      module = [...base.slice(0, base.length - (dots - 1)), ...(module ? [module] : [])].join('.');
    }
    if (module === '__future__' || !/^[\w.]+$/.test(module)) continue;
    const names = (from[3] ?? '')
      .replace(/[()]/g, '')
      .split(',')
      .map((n) => n.trim().split(/\s+/)[0])
      .filter((n): n is string => !!n && /^(\w+|\*)$/.test(n));
    if (names.length > 0) out.push(`from ${module} import ${names.join(', ')}`);
  }
  return [...new Set(out)];
}

/** Top-level import name of a path inside a packages directory ("numpy/core/x.so" -> "numpy"). */
function topLevelName(rel: string): string {
  const first = rel.split('/')[0] as string;
  // Wheels vendor shared libraries next to the package as "<name>.libs".
  if (first.endsWith('.libs')) return first.slice(0, -'.libs'.length);
  return first.split('.')[0] as string;
}

function isNativeExtension(name: string, inode: Inode): boolean {
  return (/\.so(\.|$)/.test(name) || name.endsWith('.pyd')) && (inode.kind.kind === 'elf' || inode.dropped !== undefined);
}

/** Top-level names under `roots` (packages or app directories) carrying native extensions -> their .so paths. */
export function nativePackages(ctx: StrategyContext, roots: readonly string[]): Map<string, string[]> {
  const native = new Map<string, string[]>();
  for (const root of roots) {
    const hit = ctx.fs.resolve(root);
    if (!hit.ok || hit.node.type !== 'dir') continue;
    const visit = (dir: DirNode, rel: string): void => {
      for (const [name, node] of [...dir.children].sort(([a], [b]) => (a < b ? -1 : 1))) {
        const childRel = rel ? `${rel}/${name}` : name;
        if (node.type === 'dir') {
          if (name !== '__pycache__' && !name.endsWith('.dist-info') && !name.endsWith('.egg-info')) visit(node, childRel);
        } else if (node.type === 'file' && isNativeExtension(name, node.inode)) {
          const list = native.get(topLevelName(childRel)) ?? [];
          list.push(`${root}/${childRel}`);
          native.set(topLevelName(childRel), list);
        }
      }
    };
    visit(hit.node, '');
  }
  return native;
}

/**
 * The trial program: `python [options] -c <this> <marker> <path0> <statement>…` runs each statement, reports one
 * `<marker> {json}` line per statement, and sets sys.path[0] as running the app would (`-`: leave it).
 */
const TRIAL_PROGRAM = `import sys
def _boxproxy_trial():
    import json, traceback
    marker, path0, probes = sys.argv[1], sys.argv[2], sys.argv[3:]
    if path0 != "-":
        if sys.path and sys.path[0] == "":
            sys.path[0] = path0
        else:
            sys.path.insert(0, path0)
    for stmt in probes:
        result = {"probe": stmt, "ok": True}
        try:
            exec(stmt, {"__name__": "__boxproxy_trial__"})
        except BaseException as e:
            root = e
            while (root.__cause__ or root.__context__) is not None:
                root = root.__cause__ or root.__context__
            result = {"probe": stmt, "ok": False, "error": "".join(traceback.format_exception_only(type(e), e)).strip()}
            if root is not e:
                result["cause"] = "".join(traceback.format_exception_only(type(root), root)).strip()
        sys.stdout.write("\\n" + marker + " " + json.dumps(result) + "\\n")
        sys.stdout.flush()
_boxproxy_trial()
`;

/**
 * The trial of a Python Box: `options` are the interpreter options the image passes (-I, -S, -E, …), `path0`
 * what sys.path[0] is when the app runs (its script's directory, the working directory for -m; undefined when
 * the options leave it out), `probes` the import statements to try.
 */
export function pythonTrial(options: readonly string[], path0: string | undefined, probes: readonly string[], onFailure: TrialSpec['onFailure']): TrialSpec {
  return {
    language: 'python',
    probes: [...probes],
    onFailure,
    command: (marker) => [...options, '-c', TRIAL_PROGRAM, marker, path0 ?? '-', ...probes],
  };
}
