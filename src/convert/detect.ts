import { posix } from 'node:path';
import type { ImageConfig } from '../oci/types.js';
import type { Inode, VirtualFs } from './vfs.js';

/** What a file is, judged from its first bytes. */
export type FileKind =
  | { kind: 'wasm-module' }
  | { kind: 'wasm-component'; version: number }
  | { kind: 'wasm-unknown'; version: number; layer: number }
  | ElfKind
  | { kind: 'script'; interpreter: string; arg?: string }
  | { kind: 'data' };

export interface ElfKind {
  kind: 'elf';
  bits: 32 | 64;
  endian: 'little' | 'big';
  machine: string;
  elfType: 'executable' | 'shared-object' | 'relocatable' | 'core' | 'other';
  linkage: 'static' | 'dynamic' | 'unknown';
  interpreter?: string;
}

/** Bytes classifyBytes wants to see: ELF program headers sit right after the 64-byte header in practice. */
export const SNIFF_BYTES = 4096;

const ELF_MACHINES: Record<number, string> = {
  0x03: 'x86',
  0x08: 'MIPS',
  0x14: 'PowerPC',
  0x15: 'PowerPC64',
  0x16: 's390x',
  0x28: 'ARM',
  0x2b: 'SPARC',
  0x32: 'IA-64',
  0x3e: 'x86-64',
  0xb7: 'AArch64',
  0xf3: 'RISC-V',
  0x102: 'LoongArch',
};

const PT_INTERP = 3;

function classifyElf(b: Buffer): ElfKind {
  const bits = b[4] === 2 ? 64 : 32;
  const endian = b[5] === 2 ? 'big' : 'little';
  const u16 = (o: number): number => (o + 2 <= b.length ? (endian === 'little' ? b.readUInt16LE(o) : b.readUInt16BE(o)) : 0);
  const u32 = (o: number): number => (o + 4 <= b.length ? (endian === 'little' ? b.readUInt32LE(o) : b.readUInt32BE(o)) : 0);
  const uword = (o: number): number => {
    if (bits === 32) return u32(o);
    if (o + 8 > b.length) return Number.MAX_SAFE_INTEGER;
    const v = endian === 'little' ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o);
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
  };
  const eType = u16(16);
  const machineCode = u16(18);
  const machine = ELF_MACHINES[machineCode] ?? `machine 0x${machineCode.toString(16)}`;
  const phoff = uword(bits === 64 ? 32 : 28);
  const phentsize = u16(bits === 64 ? 54 : 42);
  const phnum = u16(bits === 64 ? 56 : 44);
  let linkage: ElfKind['linkage'] = 'unknown';
  let interpreter: string | undefined;
  if (phnum === 0) linkage = 'static';
  else if (phentsize > 0 && phoff + phnum * phentsize <= b.length) {
    linkage = 'static';
    for (let i = 0; i < phnum; i++) {
      const ph = phoff + i * phentsize;
      if (u32(ph) !== PT_INTERP) continue;
      linkage = 'dynamic';
      const off = uword(ph + (bits === 64 ? 8 : 4));
      const size = uword(ph + (bits === 64 ? 32 : 16));
      if (off + size <= b.length) interpreter = b.subarray(off, off + size).toString('latin1').replace(/\0.*$/s, '');
    }
  }
  let elfType: ElfKind['elfType'];
  if (eType === 2) elfType = 'executable';
  else if (eType === 3) elfType = linkage === 'dynamic' ? 'executable' : 'shared-object';
  else if (eType === 1) elfType = 'relocatable';
  else if (eType === 4) elfType = 'core';
  else elfType = 'other';
  const kind: ElfKind = { kind: 'elf', bits, endian, machine, elfType, linkage };
  if (interpreter) kind.interpreter = interpreter;
  return kind;
}

/** Classifies a file by its leading bytes (pass at least SNIFF_BYTES when the file is that long). */
export function classifyBytes(head: Buffer): FileKind {
  if (head.length >= 8 && head[0] === 0 && head[1] === 0x61 && head[2] === 0x73 && head[3] === 0x6d) {
    const version = head.readUInt16LE(4);
    const layer = head.readUInt16LE(6);
    if (version === 1 && layer === 0) return { kind: 'wasm-module' };
    if (layer === 1) return { kind: 'wasm-component', version };
    return { kind: 'wasm-unknown', version, layer };
  }
  if (head.length >= 20 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46) {
    return classifyElf(head);
  }
  if (head.length >= 3 && head[0] === 0x23 && head[1] === 0x21) {
    const end = head.indexOf(0x0a);
    const line = head
      .subarray(2, end === -1 ? Math.min(head.length, 256) : Math.min(end, 256))
      .toString('utf8')
      .replace(/\r$/, '')
      .trim();
    const match = /^(\S+)(?:\s+(.*))?$/.exec(line);
    if (match?.[1]) {
      // Linux passes everything after the interpreter as one argument.
      const script: FileKind = { kind: 'script', interpreter: match[1] };
      const arg = match[2]?.trim();
      if (arg) script.arg = arg;
      return script;
    }
  }
  return { kind: 'data' };
}

/** "an x86-64 ELF executable (dynamically linked)" and the like, for reasons in reports. */
export function describeKind(kind: FileKind): string {
  switch (kind.kind) {
    case 'wasm-module':
      return 'a WebAssembly core module';
    case 'wasm-component':
      return 'a WebAssembly component';
    case 'wasm-unknown':
      return `a WebAssembly binary of unknown version ${kind.version}/${kind.layer}`;
    case 'elf': {
      const what = kind.elfType === 'shared-object' ? 'shared library' : kind.elfType === 'executable' ? 'executable' : `${kind.elfType} file`;
      const link = kind.linkage === 'static' ? 'statically linked' : kind.linkage === 'dynamic' ? 'dynamically linked' : undefined;
      const article = /^(x86|AArch64|ARM|IA-64|s390x)/.test(kind.machine) ? 'an' : 'a';
      return `${article} ${kind.machine} ELF ${what}${link && kind.elfType === 'executable' ? ` (${link})` : ''}`;
    }
    case 'script':
      return `a script for ${kind.interpreter}${kind.arg ? ' ' + kind.arg : ''}`;
    case 'data':
      return 'not an executable format (no ELF, Wasm or #! header)';
  }
}

// ---------------------------------------------------------------------------------------------------------
// Shell form

export type ShellParse = { ok: true; argv: string[]; env: string[] } | { ok: false; reason: string };

const SHELL_NAMES = new Set(['sh', 'bash', 'dash', 'ash', 'zsh', 'ksh', 'mksh']);

/** True when argv is `<shell> -c <script> …` (Docker's shell form: `CMD ruby app.rb`). */
export function isShellForm(argv: readonly string[]): boolean {
  const shell = argv[0];
  if (!shell || argv[1] !== '-c' || argv[2] === undefined) return false;
  return SHELL_NAMES.has(shell.slice(shell.lastIndexOf('/') + 1));
}

const META_REASONS: Record<string, string> = {
  '|': 'a pipe (|)',
  '&': 'a background or && operator (&)',
  ';': 'a command separator (;)',
  '<': 'a redirection (<)',
  '>': 'a redirection (>)',
  '(': 'a subshell (()',
  ')': 'a subshell ())',
  $: 'a variable or command substitution ($)',
  '`': 'a command substitution (`)',
  '*': 'a glob (*)',
  '?': 'a glob (?)',
  '[': 'a glob ([)',
  '{': 'a brace expansion ({)',
  '}': 'a brace expansion (})',
  '~': 'a tilde expansion (~)',
  '#': 'a comment (#)',
  '\n': 'several lines',
};

/**
 * Splits a simple shell command (words, quotes, backslashes, leading NAME=value assignments, optional `exec`)
 * into argv. Anything that needs a shell to mean what it says is refused with the construct named.
 */
export function parseSimpleShell(script: string): ShellParse {
  const words: string[] = [];
  let word: string | undefined;
  let i = 0;
  const s = script;
  while (i < s.length) {
    const c = s[i] as string;
    if (c === ' ' || c === '\t') {
      if (word !== undefined) words.push(word);
      word = undefined;
      i++;
    } else if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end === -1) return { ok: false, reason: 'the command has an unterminated single quote' };
      word = (word ?? '') + s.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      let j = i + 1;
      let acc = '';
      for (;;) {
        if (j >= s.length) return { ok: false, reason: 'the command has an unterminated double quote' };
        const d = s[j] as string;
        if (d === '"') break;
        if (d === '$' || d === '`') return { ok: false, reason: `the command uses ${META_REASONS[d]}` };
        if (d === '\\' && j + 1 < s.length && '"\\$`\n'.includes(s[j + 1] as string)) {
          if (s[j + 1] !== '\n') acc += s[j + 1];
          j += 2;
          continue;
        }
        acc += d;
        j++;
      }
      word = (word ?? '') + acc;
      i = j + 1;
    } else if (c === '\\') {
      if (i + 1 >= s.length) return { ok: false, reason: 'the command ends with a backslash' };
      if (s[i + 1] !== '\n') word = (word ?? '') + s[i + 1];
      i += 2;
    } else if (c === '#' && word !== undefined) {
      word += c;
      i++;
    } else if (c === '=' || !(c in META_REASONS)) {
      word = (word ?? '') + c;
      i++;
    } else if (c === '\n' && s.slice(i).trim() === '') {
      i++;
    } else {
      return { ok: false, reason: `the command uses ${META_REASONS[c]}` };
    }
  }
  if (word !== undefined) words.push(word);
  const env: string[] = [];
  // Leading assignments: only plain words like NAME=value count (quotes already removed, which a shell also allows).
  while (words.length > 0 && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0] as string)) env.push(words.shift() as string);
  if (words[0] === 'exec') words.shift();
  if (words.length === 0) return { ok: false, reason: 'the command is empty' };
  return { ok: true, argv: words, env };
}

// ---------------------------------------------------------------------------------------------------------
// Detection

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ResolvedExecutable {
  /** The name as written in argv. */
  requested: string;
  /** Where it was found (PATH directory + name, or the path as written), before following symlinks. */
  path: string;
  /** After following symlinks inside the image. */
  resolvedPath: string;
  inode: Inode;
  kind: FileKind;
}

export type ExecutableLookup = { ok: true; exe: ResolvedExecutable } | { ok: false; reason: string };

export function envValue(env: readonly string[], name: string): string | undefined {
  for (let i = env.length - 1; i >= 0; i--) {
    const entry = env[i] as string;
    if (entry.startsWith(name + '=')) return entry.slice(name.length + 1);
  }
  return undefined;
}

/** Replaces or appends NAME=value entries, keeping the order of first appearance. */
export function mergeEnv(base: readonly string[], overrides: readonly string[]): string[] {
  const out = [...base];
  for (const entry of overrides) {
    const name = entry.includes('=') ? entry.slice(0, entry.indexOf('=')) : entry;
    const at = out.findIndex((e) => e === name || e.startsWith(name + '='));
    if (at === -1) out.push(entry);
    else out[at] = entry;
  }
  return out;
}

/** Finds a command the way execvp does (PATH for bare names, cwd for relative paths), inside the image. */
export function lookupExecutable(fs: VirtualFs, name: string, env: readonly string[], cwd: string): ExecutableLookup {
  const candidates: string[] = [];
  if (name.includes('/')) candidates.push(name.startsWith('/') ? name : joinCwd(cwd, name));
  else {
    const pathVar = envValue(env, 'PATH') ?? DEFAULT_PATH;
    for (const dir of pathVar.split(':')) candidates.push((dir === '' ? cwd : joinCwd(cwd, dir)).replace(/\/+$/, '') + '/' + name);
  }
  let notExecutable: string | undefined;
  for (const candidate of candidates) {
    const hit = fs.resolve(candidate, { cwd });
    if (hit.ok && hit.node.type === 'file') {
      if ((hit.node.inode.mode & 0o111) === 0 && !name.includes('/')) {
        notExecutable ??= candidate;
        continue;
      }
      return { ok: true, exe: { requested: name, path: candidate, resolvedPath: hit.path, inode: hit.node.inode, kind: hit.node.inode.kind } };
    }
    if (hit.ok && hit.node.type === 'dir' && name.includes('/')) return { ok: false, reason: `${candidate} is a directory` };
    if (!hit.ok && hit.error === 'symlink-loop') return { ok: false, reason: `${candidate}: too many levels of symbolic links` };
  }
  if (notExecutable) return { ok: false, reason: `${notExecutable} is not executable` };
  if (name.includes('/')) return { ok: false, reason: `${candidates[0]} does not exist in the image` };
  return { ok: false, reason: `${JSON.stringify(name)} is not in the image's PATH (${envValue(env, 'PATH') ?? DEFAULT_PATH})` };
}

function joinCwd(cwd: string, rel: string): string {
  if (rel.startsWith('/')) return rel;
  return (cwd.endsWith('/') ? cwd : cwd + '/') + rel;
}

/**
 * The interpreter a shebang names when its file name matches `name` (`#!/usr/bin/ruby -w`,
 * `#!/usr/bin/env python3`, `#!/usr/bin/env -S ruby -w`), with the options that follow it.
 */
export function shebangInterpreter(kind: FileKind, name: RegExp): { interpreter: string; options: string[] } | undefined {
  if (kind.kind !== 'script') return undefined;
  const words = kind.arg ? kind.arg.split(/\s+/) : [];
  if (name.test(posix.basename(kind.interpreter))) return { interpreter: kind.interpreter, options: words };
  if (posix.basename(kind.interpreter) === 'env') {
    const rest = words[0] === '-S' ? words.slice(1) : words;
    const found = rest.find((w) => !w.startsWith('-') && !w.includes('='));
    if (found && name.test(posix.basename(found))) return { interpreter: found, options: rest.slice(rest.indexOf(found) + 1) };
  }
  return undefined;
}

export interface Detection {
  /** Effective argv after shell-form unwrapping. */
  argv: string[];
  /** How many leading argv entries are fixed by the image's Entrypoint (the rest is Cmd, replaceable). */
  entrypointCount: number;
  /** Image Env plus assignments from a shell-form command. */
  env: string[];
  workingDir: string;
  /** Present when the image used the shell form. */
  shell?: { argv: string[]; script: string; simple: boolean; reason?: string };
  target?: ResolvedExecutable;
  /** Why there is no target. */
  problem?: string;
}

export function detect(fs: VirtualFs, config: ImageConfig): Detection {
  const c = config.config ?? {};
  const entrypoint = c.Entrypoint ?? [];
  const cmd = c.Cmd ?? [];
  let argv = [...entrypoint, ...cmd];
  let entrypointCount = entrypoint.length;
  let env = [...(c.Env ?? [])];
  const workingDir = c.WorkingDir && c.WorkingDir.startsWith('/') ? c.WorkingDir : '/' + (c.WorkingDir ?? '');
  const detection: Detection = { argv, entrypointCount, env, workingDir };
  if (argv.length === 0) {
    detection.problem = 'the image has no Entrypoint or Cmd';
    return detection;
  }
  if (isShellForm(argv)) {
    const script = argv[2] as string;
    const parsed = parseSimpleShell(script);
    if (!parsed.ok || argv.length > 3) {
      const reason = parsed.ok ? 'the shell is given positional parameters' : parsed.reason;
      detection.shell = { argv, script, simple: false, reason };
      detection.problem = `the command is a shell script (${JSON.stringify(script)}): ${reason}; it needs a shell, and no Wasm build of ${argv[0]} is known`;
      return detection;
    }
    detection.shell = { argv, script, simple: true };
    // The script is one string: its words are all fixed by whichever part held it.
    entrypointCount = entrypointCount > 2 ? parsed.argv.length : 0;
    argv = parsed.argv;
    env = mergeEnv(env, parsed.env);
    Object.assign(detection, { argv, entrypointCount, env });
  }
  const lookup = lookupExecutable(fs, argv[0] as string, env, workingDir);
  if (lookup.ok) detection.target = lookup.exe;
  else detection.problem = lookup.reason;
  return detection;
}
