// The QuickJS host modules the Node layer is built on: `qjs --std` makes quickjs-libc's `std` and `os` globals.
// Only what the layer uses is typed. Calls return negative errno values (WASI numbering) or [value, errno].

export interface QjsStat {
  dev: number;
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  blocks: number;
  /** Milliseconds since the epoch. */
  atime: number;
  mtime: number;
  ctime: number;
}

export interface QjsFile {
  puts(s: string): void;
  flush(): void;
  readAsString(max?: number): string;
}

export interface QjsStd {
  exit(code: number): never;
  getenviron(): Record<string, string>;
  setenv(name: string, value: string): void;
  unsetenv(name: string): void;
  strerror(errno: number): string;
  loadFile(path: string): string | null;
  evalScript(code: string, opts?: { backtrace_barrier?: boolean }): unknown;
  gc(): void;
  in: QjsFile;
  out: QjsFile;
  err: QjsFile;
}

export interface QjsOs {
  open(path: string, flags: number, mode?: number): number;
  close(fd: number): number;
  read(fd: number, buf: ArrayBuffer, offset: number, length: number): number;
  write(fd: number, buf: ArrayBuffer, offset: number, length: number): number;
  seek(fd: number, offset: number, whence: number): number;
  isatty(fd: number): boolean;
  remove(path: string): number;
  rename(from: string, to: string): number;
  realpath(path: string): [string, number];
  getcwd(): [string, number];
  chdir(path: string): number;
  mkdir(path: string, mode?: number): number;
  stat(path: string): [QjsStat, number];
  lstat(path: string): [QjsStat, number];
  readdir(path: string): [string[], number];
  readlink(path: string): [string, number];
  symlink(target: string, linkpath: string): number;
  utimes(path: string, atime: number, mtime: number): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  now(): number;
  sleep(ms: number): number;
  platform: string;
  O_RDONLY: number;
  O_WRONLY: number;
  O_RDWR: number;
  O_APPEND: number;
  O_CREAT: number;
  O_EXCL: number;
  O_TRUNC: number;
  S_IFMT: number;
  S_IFIFO: number;
  S_IFCHR: number;
  S_IFDIR: number;
  S_IFBLK: number;
  S_IFREG: number;
  S_IFSOCK: number;
  S_IFLNK: number;
  SEEK_SET: number;
  SEEK_CUR: number;
  SEEK_END: number;
}

const host = globalThis as unknown as { std?: QjsStd; os?: QjsOs };
if (!host.std || !host.os) throw new Error('the Node layer needs QuickJS started with --std');
export const std: QjsStd = host.std;
export const os: QjsOs = host.os;
// The app sees Node's globals, not QuickJS's.
delete host.std;
delete host.os;
