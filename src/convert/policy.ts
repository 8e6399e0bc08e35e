import type { FileKind } from './detect.js';

/**
 * What of an image cannot matter inside Wasm, so the Box leaves it out. Decided per file from its path and
 * its leading bytes, once, while flattening (dropped bytes are never written to the work dir).
 */
const DROPPED_TREES: ReadonlyArray<readonly [prefix: string, reason: string]> = [
  // Package-manager state: only the native package manager reads it.
  ['var/lib/dpkg/', 'package-manager database'],
  ['var/lib/apt/', 'package-manager database'],
  ['var/cache/apt/', 'package-manager database'],
  ['var/cache/debconf/', 'package-manager database'],
  ['lib/apk/db/', 'package-manager database'],
  ['var/cache/apk/', 'package-manager database'],
  ['var/lib/rpm/', 'package-manager database'],
  ['var/cache/dnf/', 'package-manager database'],
  ['var/cache/yum/', 'package-manager database'],
  // Documentation meant for people reading a terminal, not for programs.
  ['usr/share/doc/', 'documentation'],
  ['usr/share/man/', 'documentation'],
  ['usr/share/info/', 'documentation'],
  ['usr/local/share/doc/', 'documentation'],
  ['usr/local/share/man/', 'documentation'],
  ['usr/local/share/info/', 'documentation'],
  // glibc's compiled locale archive: only native libc reads it.
  ['usr/lib/locale/', 'native libc locale data'],
];

export const DROP_ELF = 'native code (ELF executable or library)';

/** Reason a non-directory entry at `path` (no leading slash) is left out of the Box by its location. */
export function dropReasonForPath(path: string): string | undefined {
  for (const [prefix, reason] of DROPPED_TREES) if (path.startsWith(prefix)) return reason;
  return undefined;
}

/** Reason a regular file is left out of the Box by what it is. */
export function dropReasonForKind(kind: FileKind): string | undefined {
  return kind.kind === 'elf' ? DROP_ELF : undefined;
}
