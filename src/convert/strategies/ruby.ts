import { envValue, lookupExecutable, shebangInterpreter, type FileKind, type ResolvedExecutable } from '../detect.js';
import { LABEL_RUNTIME, LABEL_RUNTIME_PACKAGE } from '../../box/format.js';
import { DROP_ELF } from '../policy.js';
import { basename, splitArgs, type PlanOutcome, type Strategy, type StrategyContext } from './types.js';

/** Where ruby.wasm sits inside a Ruby Box. */
export const RUBY_WASM_BOX_PATH = '/.boxproxy/runtime/ruby.wasm';

const RUBY_NAME = /^ruby(\d+(\.\d+)*)?$/;

/** The Ruby interpreter a shebang names (`#!/usr/bin/ruby -w`, `#!/usr/bin/env ruby`), with its options. */
export function rubyFromShebang(kind: FileKind): { interpreter: string; options: string[] } | undefined {
  return shebangInterpreter(kind, RUBY_NAME);
}

/** The image's Ruby version: RUBY_VERSION (official images), the binary's name, or the stdlib directory. */
export function imageRubyVersion(ctx: StrategyContext, exe: ResolvedExecutable | undefined): string {
  const fromEnv = envValue(ctx.detection.env, 'RUBY_VERSION');
  if (fromEnv && /^\d+\.\d+/.test(fromEnv)) return fromEnv;
  for (const name of [exe?.resolvedPath, exe?.path]) {
    const m = name ? /ruby(\d+\.\d+)/.exec(basename(name)) : null;
    if (m?.[1]) return m[1];
  }
  for (const libDir of ['/usr/local/lib/ruby', '/usr/lib/ruby']) {
    const dir = ctx.fs.resolve(libDir);
    if (dir.ok && dir.node.type === 'dir') {
      const versions = [...dir.node.children.keys()].filter((n) => /^\d+\.\d+\.\d+$/.test(n)).sort();
      const newest = versions[versions.length - 1];
      if (newest) return newest;
    }
  }
  return '';
}

/** argv[0] (or a script's shebang) is Ruby: the Box carries ruby.wasm and runs the app's files with it. */
export const ruby: Strategy = {
  name: 'ruby',
  async plan(ctx: StrategyContext): Promise<PlanOutcome> {
    const { detection } = ctx;
    const target = detection.target;
    if (!target) return { reason: detection.problem ?? 'no entrypoint' };
    let rubyArgs: string[];
    let fixedArgs: string[];
    let rubyExe: ResolvedExecutable | undefined;
    const byName = RUBY_NAME.test(basename(target.requested)) || RUBY_NAME.test(basename(target.resolvedPath));
    const shebang = rubyFromShebang(target.kind);
    if (byName) {
      rubyExe = target;
      ({ fixed: fixedArgs, cmd: rubyArgs } = splitArgs(detection.argv, detection.entrypointCount, 1));
    } else if (shebang) {
      const lookup = lookupExecutable(ctx.fs, shebang.interpreter, detection.env, detection.workingDir);
      if (lookup.ok) rubyExe = lookup.exe;
      const { fixed, cmd } = splitArgs(detection.argv, detection.entrypointCount, 1);
      // The kernel runs `<interpreter> [options] <script> args…`; the script path is fixed like argv[0] was.
      fixedArgs = [...shebang.options, target.resolvedPath, ...fixed];
      rubyArgs = cmd;
    } else {
      return { reason: `${target.path} is not a Ruby interpreter or a Ruby script` };
    }
    const allArgs = [...fixedArgs, ...rubyArgs];
    const script = firstScript(allArgs);
    if (script !== undefined) {
      const path = script.startsWith('/') ? script : `${detection.workingDir.replace(/\/$/, '')}/${script}`;
      const hit = ctx.fs.resolve(path);
      if (!hit.ok || hit.node.type !== 'file') return { reason: `the Ruby script ${path} is not a file in the image`, recognized: true };
    }
    const version = imageRubyVersion(ctx, rubyExe);
    const runtime = await ctx.runtimes.ruby(version);
    if (!runtime) {
      return { reason: `no ruby.wasm runtime is installed (npm package @ruby/<major.minor>-wasm-wasi) for the image's Ruby ${version || '(unknown version)'}`,
        recognized: true,
      };
    }
    const notes: string[] = [];
    const wanted = version.split('.').slice(0, 2).join('.');
    if (wanted && wanted !== runtime.version) notes.push(`the image has Ruby ${version}; the nearest ruby.wasm is ${runtime.version}`);
    const nativeExtensions = countNativeExtensions(ctx);
    if (nativeExtensions > 0) notes.push(`${nativeExtensions} native extension(s) (.so) in gem or Ruby library directories were dropped; code requiring them will fail`);
    const labels: Record<string, string> = { [LABEL_RUNTIME]: `ruby@${runtime.version}` };
    if (runtime.package) labels[LABEL_RUNTIME_PACKAGE] = runtime.package;
    return {
      strategy: 'ruby',
      runner: 'ruby.wasm',
      modules: [{ boxPath: RUBY_WASM_BOX_PATH, from: { kind: 'host', path: runtime.wasmPath }, mode: 0o555 }],
      entrypoint: [RUBY_WASM_BOX_PATH, ...fixedArgs],
      cmd: rubyArgs,
      env: detection.env,
      workingDir: detection.workingDir,
      labels,
      excludePaths: [],
      notes,
    };
  },
};

/** The script ruby would run: the first argument that is not an option (none with -e). */
function firstScript(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--') return args[i + 1];
    if (a === '-e' || a.startsWith('-e')) return undefined;
    if (/^-[IrCEKTWx]$/.test(a) || a === '--encoding' || a === '--external-encoding' || a === '--internal-encoding') {
      i++;
      continue;
    }
    if (!a.startsWith('-')) return a;
  }
  return undefined;
}

function countNativeExtensions(ctx: StrategyContext): number {
  let count = 0;
  for (const { path, node } of ctx.fs.walk()) {
    if (node.type === 'file' && node.inode.dropped === DROP_ELF && path.endsWith('.so') && /\/(gems|ruby)\//.test(path)) count++;
  }
  return count;
}
