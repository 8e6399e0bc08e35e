// node:fs over WASI files through quickjs-libc's `os` module: the sync API is the core; the callback and
// promise forms run it on a later turn of the loop. Paths resolve against process.cwd() (wasi-libc's chdir).
import { Buffer } from 'buffer';
import { codedError, systemError } from './errors.js';
import { defer } from './loop.js';
import { os, type QjsStat } from './quickjs.js';

export type PathLike = string | Buffer | URL;
type Encoding = BufferEncoding | null | undefined;
export type Options = { encoding?: Encoding; flag?: string; mode?: number; recursive?: boolean; force?: boolean; withFileTypes?: boolean } | BufferEncoding | undefined | null;

export function pathOf(p: PathLike | number): string {
  if (typeof p === 'string') return p;
  if (p instanceof Uint8Array) return Buffer.from(p).toString('utf8');
  if (p && typeof p === 'object' && 'protocol' in p) {
    if (p.protocol !== 'file:') throw codedError('ERR_INVALID_URL_SCHEME', 'The URL must be of scheme file', TypeError);
    return decodeURIComponent(p.pathname);
  }
  throw codedError('ERR_INVALID_ARG_TYPE', `The "path" argument must be of type string or an instance of Buffer or URL. Received ${typeof p}`, TypeError);
}

function optionsOf(o: Options): Exclude<Options, string | undefined | null> {
  if (typeof o === 'string') return { encoding: o };
  return o ?? {};
}

export function check(ret: number, syscall: string, path?: string, dest?: string): number {
  if (ret < 0) throw systemError(-ret, syscall, path, dest);
  return ret;
}

const FLAGS: Record<string, number> = {
  r: os.O_RDONLY,
  'r+': os.O_RDWR,
  rs: os.O_RDONLY,
  'rs+': os.O_RDWR,
  w: os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
  wx: os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_EXCL,
  'w+': os.O_RDWR | os.O_CREAT | os.O_TRUNC,
  'wx+': os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_EXCL,
  a: os.O_WRONLY | os.O_CREAT | os.O_APPEND,
  ax: os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL,
  'a+': os.O_RDWR | os.O_CREAT | os.O_APPEND,
  'ax+': os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_EXCL,
};

function flagsOf(flag: string | number | undefined, fallback: string): number {
  if (typeof flag === 'number') return flag;
  const f = FLAGS[flag ?? fallback];
  if (f === undefined) throw codedError('ERR_INVALID_ARG_VALUE', `The argument 'flags' is invalid. Received '${flag}'`, TypeError);
  return f;
}

export const constants = {
  O_RDONLY: os.O_RDONLY,
  O_WRONLY: os.O_WRONLY,
  O_RDWR: os.O_RDWR,
  O_APPEND: os.O_APPEND,
  O_CREAT: os.O_CREAT,
  O_EXCL: os.O_EXCL,
  O_TRUNC: os.O_TRUNC,
  S_IFMT: os.S_IFMT,
  S_IFREG: os.S_IFREG,
  S_IFDIR: os.S_IFDIR,
  S_IFLNK: os.S_IFLNK,
  S_IFCHR: os.S_IFCHR,
  S_IFBLK: os.S_IFBLK,
  S_IFIFO: os.S_IFIFO,
  S_IFSOCK: os.S_IFSOCK,
  F_OK: 0,
  R_OK: 4,
  W_OK: 2,
  X_OK: 1,
  COPYFILE_EXCL: 1,
};
export const { F_OK, R_OK, W_OK, X_OK } = constants;

export class Stats {
  dev: number;
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  blksize = 4096;
  blocks: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  birthtimeMs: number;
  atime: Date;
  mtime: Date;
  ctime: Date;
  birthtime: Date;

  constructor(s: QjsStat) {
    this.dev = s.dev;
    this.ino = s.ino;
    this.mode = s.mode;
    this.nlink = s.nlink;
    this.uid = s.uid;
    this.gid = s.gid;
    this.rdev = s.rdev;
    this.size = s.size;
    this.blocks = s.blocks;
    this.atimeMs = s.atime;
    this.mtimeMs = s.mtime;
    this.ctimeMs = s.ctime;
    this.birthtimeMs = s.ctime;
    this.atime = new Date(s.atime);
    this.mtime = new Date(s.mtime);
    this.ctime = new Date(s.ctime);
    this.birthtime = new Date(s.ctime);
  }

  private type(): number {
    return this.mode & os.S_IFMT;
  }
  isFile(): boolean {
    return this.type() === os.S_IFREG;
  }
  isDirectory(): boolean {
    return this.type() === os.S_IFDIR;
  }
  isSymbolicLink(): boolean {
    return this.type() === os.S_IFLNK;
  }
  isCharacterDevice(): boolean {
    return this.type() === os.S_IFCHR;
  }
  isBlockDevice(): boolean {
    return this.type() === os.S_IFBLK;
  }
  isFIFO(): boolean {
    return this.type() === os.S_IFIFO;
  }
  isSocket(): boolean {
    return this.type() === os.S_IFSOCK;
  }
}

export class Dirent {
  constructor(
    readonly name: string,
    private readonly stats: Stats | undefined,
    readonly parentPath: string,
  ) {}
  get path(): string {
    return this.parentPath;
  }
  isFile(): boolean {
    return this.stats?.isFile() ?? false;
  }
  isDirectory(): boolean {
    return this.stats?.isDirectory() ?? false;
  }
  isSymbolicLink(): boolean {
    return this.stats?.isSymbolicLink() ?? false;
  }
  isCharacterDevice(): boolean {
    return this.stats?.isCharacterDevice() ?? false;
  }
  isBlockDevice(): boolean {
    return this.stats?.isBlockDevice() ?? false;
  }
  isFIFO(): boolean {
    return this.stats?.isFIFO() ?? false;
  }
  isSocket(): boolean {
    return this.stats?.isSocket() ?? false;
  }
}

// --- sync API -----------------------------------------------------------------------------------------------

export function openSync(path: PathLike, flags?: string | number, mode = 0o666): number {
  const p = pathOf(path);
  return check(os.open(p, flagsOf(flags, 'r'), mode), 'open', p);
}

export function closeSync(fd: number): void {
  check(os.close(fd), 'close');
}

export function readSync(fd: number, buffer: Uint8Array, offsetOrOpts?: number | { offset?: number; length?: number; position?: number | null }, length?: number, position?: number | null): number {
  let offset = 0;
  if (typeof offsetOrOpts === 'object' && offsetOrOpts !== null) {
    offset = offsetOrOpts.offset ?? 0;
    length = offsetOrOpts.length;
    position = offsetOrOpts.position;
  } else offset = offsetOrOpts ?? 0;
  const len = length ?? buffer.byteLength - offset;
  if (typeof position === 'number' && position >= 0) check(os.seek(fd, position, os.SEEK_SET), 'read');
  return check(os.read(fd, buffer.buffer as ArrayBuffer, buffer.byteOffset + offset, len), 'read');
}

export function writeAll(fd: number, bytes: Uint8Array, syscall = 'write'): void {
  let done = 0;
  while (done < bytes.length) {
    done += check(os.write(fd, bytes.buffer as ArrayBuffer, bytes.byteOffset + done, bytes.length - done), syscall);
  }
}

export function writeSync(fd: number, data: string | Uint8Array, offsetOrPosition?: number | null, lengthOrEncoding?: number | BufferEncoding): number {
  if (typeof data === 'string') {
    const bytes = Buffer.from(data, typeof lengthOrEncoding === 'string' ? lengthOrEncoding : 'utf8');
    writeAll(fd, bytes);
    return bytes.length;
  }
  const offset = offsetOrPosition ?? 0;
  const length = typeof lengthOrEncoding === 'number' ? lengthOrEncoding : data.byteLength - offset;
  writeAll(fd, data.subarray(offset, offset + length));
  return length;
}

function readFd(fd: number): Buffer {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const chunk = Buffer.allocUnsafe(64 * 1024);
    const n = check(os.read(fd, chunk.buffer as ArrayBuffer, chunk.byteOffset, chunk.length), 'read');
    if (n === 0) break;
    chunks.push(chunk.subarray(0, n));
    total += n;
  }
  return Buffer.concat(chunks, total);
}

export function readFileSync(path: PathLike | number, options?: Options): string | Buffer {
  const opts = optionsOf(options);
  let data: Buffer;
  if (typeof path === 'number') data = readFd(path);
  else {
    const p = pathOf(path);
    const fd = check(os.open(p, flagsOf(opts.flag, 'r')), 'open', p);
    try {
      const [st] = os.stat(p);
      if (st && (st.mode & os.S_IFMT) === os.S_IFDIR) throw systemError(31, 'read');
      data = readFd(fd);
    } finally {
      os.close(fd);
    }
  }
  return opts.encoding ? data.toString(opts.encoding) : data;
}

function bytesOf(data: string | Uint8Array | DataView, encoding: Encoding): Uint8Array {
  if (typeof data === 'string') return Buffer.from(data, encoding ?? 'utf8');
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(String(data));
}

export function writeFileSync(path: PathLike | number, data: string | Uint8Array, options?: Options): void {
  const opts = optionsOf(options);
  const bytes = bytesOf(data, opts.encoding);
  if (typeof path === 'number') return writeAll(path, bytes);
  const p = pathOf(path);
  const fd = check(os.open(p, flagsOf(opts.flag, 'w'), opts.mode ?? 0o666), 'open', p);
  try {
    writeAll(fd, bytes);
  } finally {
    os.close(fd);
  }
}

export function appendFileSync(path: PathLike | number, data: string | Uint8Array, options?: Options): void {
  const opts = optionsOf(options);
  writeFileSync(path, data, { ...opts, flag: opts.flag ?? 'a' });
}

function statOf(p: string, follow: boolean, syscall: string): Stats {
  const [st, err] = follow ? os.stat(p) : os.lstat(p);
  if (err) throw systemError(err < 0 ? -err : err, syscall, p);
  return new Stats(st);
}

export function statSync(path: PathLike, options?: { throwIfNoEntry?: boolean }): Stats | undefined {
  const p = pathOf(path);
  try {
    return statOf(p, true, 'stat');
  } catch (err) {
    if (options?.throwIfNoEntry === false && (err as { code?: string }).code === 'ENOENT') return undefined;
    throw err;
  }
}

export function lstatSync(path: PathLike, options?: { throwIfNoEntry?: boolean }): Stats | undefined {
  const p = pathOf(path);
  try {
    return statOf(p, false, 'lstat');
  } catch (err) {
    if (options?.throwIfNoEntry === false && (err as { code?: string }).code === 'ENOENT') return undefined;
    throw err;
  }
}

export function fstatSync(fd: number): Stats {
  // quickjs-libc has no fstat; /dev/fd is not there under WASI either.
  throw systemError(52, 'fstat', String(fd));
}

export function existsSync(path: PathLike): boolean {
  try {
    const [, err] = os.stat(pathOf(path));
    return err === 0;
  } catch {
    return false;
  }
}

export function accessSync(path: PathLike, _mode?: number): void {
  statOf(pathOf(path), true, 'access');
}

function join(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

export function readdirSync(path: PathLike, options?: Options): Array<string | Buffer | Dirent> {
  const p = pathOf(path);
  const opts = optionsOf(options);
  const [names, err] = os.readdir(p);
  if (err) throw systemError(err < 0 ? -err : err, 'scandir', p);
  const out: Array<string | Buffer | Dirent> = [];
  const walk = (dir: string, rel: string, list: string[]): void => {
    for (const name of list) {
      if (name === '.' || name === '..') continue;
      const relName = rel ? `${rel}/${name}` : name;
      const [st] = os.lstat(join(dir, name));
      const stats = st ? new Stats(st) : undefined;
      if (opts.withFileTypes) out.push(new Dirent(name, stats, dir));
      else out.push((opts.encoding as string | null | undefined) === 'buffer' ? Buffer.from(relName) : relName);
      if (opts.recursive && stats?.isDirectory()) {
        const [sub] = os.readdir(join(dir, name));
        walk(join(dir, name), relName, sub ?? []);
      }
    }
  };
  walk(p, '', names);
  return out;
}

export function mkdirSync(path: PathLike, options?: { recursive?: boolean; mode?: number } | number): string | undefined {
  const p = pathOf(path);
  const opts = typeof options === 'number' ? { mode: options } : (options ?? {});
  const mode = opts.mode ?? 0o777;
  if (!opts.recursive) {
    check(os.mkdir(p, mode), 'mkdir', p);
    return undefined;
  }
  const parts = p.split('/');
  let first: string | undefined;
  for (let i = 1; i <= parts.length; i++) {
    const dir = parts.slice(0, i).join('/');
    if (dir === '' || dir === '.') continue;
    const ret = os.mkdir(dir, mode);
    if (ret === 0) first ??= dir;
    else if (-ret === 20) {
      if (!statOf(dir, true, 'mkdir').isDirectory()) throw systemError(54, 'mkdir', p);
    } else throw systemError(-ret, 'mkdir', p);
  }
  return first;
}

export function mkdtempSync(prefix: string): string {
  const chars = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  for (let attempt = 0; attempt < 100; attempt++) {
    let suffix = '';
    for (let i = 0; i < 6; i++) suffix += chars[Math.floor(Math.random() * chars.length)];
    const ret = os.mkdir(prefix + suffix, 0o700);
    if (ret === 0) return prefix + suffix;
    if (-ret !== 20) throw systemError(-ret, 'mkdtemp', prefix + 'XXXXXX');
  }
  throw systemError(20, 'mkdtemp', prefix + 'XXXXXX');
}

export function unlinkSync(path: PathLike): void {
  const p = pathOf(path);
  if (statOf(p, false, 'unlink').isDirectory()) throw systemError(31, 'unlink', p);
  check(os.remove(p), 'unlink', p);
}

export function rmdirSync(path: PathLike, options?: { recursive?: boolean }): void {
  const p = pathOf(path);
  if (options?.recursive) return rmSync(p, { recursive: true, force: true });
  if (!statOf(p, false, 'rmdir').isDirectory()) throw systemError(54, 'rmdir', p);
  check(os.remove(p), 'rmdir', p);
}

export function rmSync(path: PathLike, options?: { recursive?: boolean; force?: boolean }): void {
  const p = pathOf(path);
  const [st, err] = os.lstat(p);
  if (err) {
    if (options?.force && (err === 44 || err === -44)) return;
    throw systemError(err < 0 ? -err : err, 'rm', p);
  }
  if ((st.mode & os.S_IFMT) === os.S_IFDIR) {
    if (!options?.recursive) throw codedError('ERR_FS_EISDIR', `Path is a directory: rm returned EISDIR (is a directory) ${p}`);
    const [names] = os.readdir(p);
    for (const name of names ?? []) if (name !== '.' && name !== '..') rmSync(join(p, name), options);
  }
  check(os.remove(p), 'rm', p);
}

export function renameSync(from: PathLike, to: PathLike): void {
  const a = pathOf(from);
  const b = pathOf(to);
  check(os.rename(a, b), 'rename', a, b);
}

export function copyFileSync(src: PathLike, dest: PathLike, mode = 0): void {
  const a = pathOf(src);
  const b = pathOf(dest);
  if (mode & constants.COPYFILE_EXCL && existsSync(b)) throw systemError(20, 'copyfile', a, b);
  writeFileSync(b, readFileSync(a) as Buffer);
}

export function cpSync(src: PathLike, dest: PathLike, options?: { recursive?: boolean }): void {
  const a = pathOf(src);
  const b = pathOf(dest);
  if (statOf(a, true, 'cp').isDirectory()) {
    if (!options?.recursive) throw codedError('ERR_FS_EISDIR', `Recursive option is required to copy a directory: ${a}`);
    mkdirSync(b, { recursive: true });
    for (const name of readdirSync(a) as string[]) cpSync(join(a, name), join(b, name), options);
  } else copyFileSync(a, b);
}

export function readlinkSync(path: PathLike): string {
  const p = pathOf(path);
  const [target, err] = os.readlink(p);
  if (err) throw systemError(err < 0 ? -err : err, 'readlink', p);
  return target;
}

export function symlinkSync(target: PathLike, path: PathLike): void {
  const t = pathOf(target);
  const p = pathOf(path);
  check(os.symlink(t, p), 'symlink', t, p);
}

export function realpathSync(path: PathLike): string {
  const p = pathOf(path);
  const [real, err] = os.realpath(p);
  if (err) throw systemError(err < 0 ? -err : err, 'realpath', p);
  return real;
}
realpathSync.native = realpathSync;

export function utimesSync(path: PathLike, atime: number | Date, mtime: number | Date): void {
  const p = pathOf(path);
  const ms = (t: number | Date): number => (t instanceof Date ? t.getTime() : t * 1000);
  check(os.utimes(p, ms(atime), ms(mtime)), 'utime', p);
}

/** WASI has no permission bits: chmod and chown succeed when the file exists, as on a filesystem without them. */
export function chmodSync(path: PathLike, _mode: number): void {
  statOf(pathOf(path), true, 'chmod');
}
export function chownSync(path: PathLike, _uid: number, _gid: number): void {
  statOf(pathOf(path), true, 'chown');
}

export function truncateSync(path: PathLike, len = 0): void {
  const p = pathOf(path);
  const data = readFileSync(p) as Buffer;
  const out = Buffer.alloc(len);
  data.copy(out, 0, 0, Math.min(len, data.length));
  writeFileSync(p, out);
}

// --- streams: fs-streams.ts, loaded on first use (npm's readable-stream is not evaluated by scripts without streams)

type Streams = typeof import('./fs-streams.js');
const streams = (): Streams => require('./fs-streams.js') as Streams;

export function createReadStream(path: PathLike, options?: Parameters<Streams['createReadStream']>[1]): ReturnType<Streams['createReadStream']> {
  return streams().createReadStream(path, options);
}
export function createWriteStream(path: PathLike, options?: Parameters<Streams['createWriteStream']>[1]): ReturnType<Streams['createWriteStream']> {
  return streams().createWriteStream(path, options);
}

// --- callback and promise forms -----------------------------------------------------------------------------

type AnyFn = (...args: never[]) => unknown;
type Callback = (err: unknown, value?: unknown) => void;

function callbackForm(fn: AnyFn): (...args: unknown[]) => void {
  return (...args: unknown[]) => {
    const cb = args.pop();
    if (typeof cb !== 'function') throw codedError('ERR_INVALID_ARG_TYPE', 'The "cb" argument must be of type function. Received ' + typeof cb, TypeError);
    defer(() => {
      let value: unknown;
      try {
        value = (fn as (...a: unknown[]) => unknown)(...args);
      } catch (err) {
        (cb as Callback)(err);
        return;
      }
      (cb as Callback)(null, value);
    });
  };
}

function promiseForm(fn: AnyFn): (...args: unknown[]) => Promise<unknown> {
  return (...args: unknown[]) =>
    new Promise((resolve, reject) => {
      defer(() => {
        try {
          resolve((fn as (...a: unknown[]) => unknown)(...args));
        } catch (err) {
          reject(err);
        }
      });
    });
}

const syncApi = {
  access: accessSync,
  appendFile: appendFileSync,
  chmod: chmodSync,
  chown: chownSync,
  copyFile: copyFileSync,
  cp: cpSync,
  lstat: lstatSync,
  mkdir: mkdirSync,
  mkdtemp: mkdtempSync,
  readdir: readdirSync,
  readFile: readFileSync,
  readlink: readlinkSync,
  realpath: realpathSync,
  rename: renameSync,
  rm: rmSync,
  rmdir: rmdirSync,
  stat: statSync,
  symlink: symlinkSync,
  truncate: truncateSync,
  unlink: unlinkSync,
  utimes: utimesSync,
  writeFile: writeFileSync,
  open: openSync,
  close: closeSync,
} satisfies Record<string, AnyFn>;

type AsyncApi = { [K in keyof typeof syncApi]: (...args: unknown[]) => void };
type PromiseApi = { [K in keyof typeof syncApi]: (...args: unknown[]) => Promise<unknown> };

const callbacks = {} as AsyncApi;
const promiseApi = {} as PromiseApi & { constants: typeof constants };
for (const [name, fn] of Object.entries(syncApi) as Array<[keyof typeof syncApi, AnyFn]>) {
  callbacks[name] = callbackForm(fn);
  promiseApi[name] = promiseForm(fn);
}
promiseApi.constants = constants;

export function exists(path: PathLike, cb: (exists: boolean) => void): void {
  defer(() => cb(existsSync(path)));
}

export const {
  access,
  appendFile,
  chmod,
  chown,
  copyFile,
  cp,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  realpath,
  rename,
  rm,
  rmdir,
  stat,
  symlink,
  truncate,
  unlink,
  utimes,
  writeFile,
  open,
  close,
} = callbacks;
export const promises = promiseApi;

export default {
  ...callbacks,
  exists,
  promises,
  constants,
  Stats,
  Dirent,
  F_OK,
  R_OK,
  W_OK,
  X_OK,
  openSync,
  closeSync,
  readSync,
  writeSync,
  readFileSync,
  writeFileSync,
  appendFileSync,
  statSync,
  lstatSync,
  fstatSync,
  existsSync,
  accessSync,
  readdirSync,
  mkdirSync,
  mkdtempSync,
  unlinkSync,
  rmdirSync,
  rmSync,
  renameSync,
  copyFileSync,
  cpSync,
  readlinkSync,
  symlinkSync,
  realpathSync,
  utimesSync,
  chmodSync,
  chownSync,
  truncateSync,
  createReadStream,
  createWriteStream,
  get ReadStream() {
    return streams().ReadStream;
  },
  get WriteStream() {
    return streams().WriteStream;
  },
};
