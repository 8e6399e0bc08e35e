// The command line a Node Box is started with is the image's own (Entrypoint + Cmd, or what replaced Cmd, as
// with `docker run IMAGE args…`): `node [options] script args…`, or `script args…` for a #! script. It is read
// here as node reads it; a command naming another program or script than the bundled one is refused.
import { config } from './config.js';
import { os } from './quickjs.js';

export type Command = { ok: true; script: string; args: string[]; execArgv: string[] } | { ok: false; reason: string };

const NODE_NAME = /^(node|nodejs)\d*$/;
/** node options that take the next argument as their value. */
const WITH_VALUE = new Set(['-r', '--require', '--import', '--loader', '--experimental-loader', '--env-file', '--input-type', '--title', '--max-old-space-size', '--stack-size', '--conditions', '-C']);

function baseName(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

function realpath(p: string, cwd: string): string | undefined {
  const abs = p.startsWith('/') ? p : `${cwd.replace(/\/$/, '')}/${p}`;
  for (const candidate of [abs, `${abs}.js`, `${abs}.mjs`, `${abs}.cjs`, `${abs}/index.js`]) {
    const [real, err] = os.realpath(candidate);
    if (err === 0) {
      const [st, serr] = os.stat(real);
      if (serr === 0 && (st.mode & os.S_IFMT) === os.S_IFREG) return real;
    }
  }
  return undefined;
}

export function parseCommand(argv: readonly string[], cwd: string): Command {
  const first = argv[0];
  if (first === undefined) return { ok: false, reason: 'the Box was started without a command' };
  let i: number;
  const execArgv: string[] = [];
  if (config.scriptNames.includes(first)) {
    i = 0;
  } else if (config.nodeNames.includes(first) || NODE_NAME.test(baseName(first))) {
    for (i = 1; i < argv.length; i++) {
      const a = argv[i] as string;
      if (a === '--') {
        i++;
        break;
      }
      if (!a.startsWith('-') || a === '-') break;
      if (a === '-e' || a === '--eval' || a === '-p' || a === '--print') return { ok: false, reason: `node ${a}: a Box runs its bundled script, not a program given on the command line` };
      execArgv.push(a);
      if (WITH_VALUE.has(a) && argv[i + 1] !== undefined) execArgv.push(argv[++i] as string);
    }
    if (argv[i] === undefined) return { ok: false, reason: 'node without a script (the REPL) cannot run in a Box' };
  } else {
    return { ok: false, reason: `${first}: not found (this Box runs ${config.script} with Node.js)` };
  }
  const requested = argv[i] as string;
  const script = realpath(requested, cwd);
  if (script !== config.script) {
    return { ok: false, reason: `${requested}: this Box bundles ${config.script} only (another script cannot be loaded)` };
  }
  return { ok: true, script, args: argv.slice(i + 1), execArgv };
}
