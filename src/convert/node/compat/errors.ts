// Node-style system errors from WASI errno values (wasi-libc uses WASI's numbering): code, Linux errno and
// libuv's message, so `err.code === 'ENOENT'` and the printed message read as they do under Node on Linux.
import { std } from './quickjs.js';

/** WASI errno -> [code, Linux errno, libuv message]. */
const ERRNO: Record<number, [string, number, string]> = {
  1: ['E2BIG', 7, 'argument list too long'],
  2: ['EACCES', 13, 'permission denied'],
  6: ['EAGAIN', 11, 'resource temporarily unavailable'],
  8: ['EBADF', 9, 'bad file descriptor'],
  10: ['EBUSY', 16, 'resource busy or locked'],
  20: ['EEXIST', 17, 'file already exists'],
  22: ['EFBIG', 27, 'file too large'],
  27: ['EINTR', 4, 'interrupted system call'],
  28: ['EINVAL', 22, 'invalid argument'],
  29: ['EIO', 5, 'i/o error'],
  31: ['EISDIR', 21, 'illegal operation on a directory'],
  32: ['ELOOP', 40, 'too many symbolic links encountered'],
  33: ['EMFILE', 24, 'too many open files'],
  34: ['EMLINK', 31, 'too many links'],
  37: ['ENAMETOOLONG', 36, 'name too long'],
  41: ['ENFILE', 23, 'file table overflow'],
  43: ['ENODEV', 19, 'no such device'],
  44: ['ENOENT', 2, 'no such file or directory'],
  48: ['ENOMEM', 12, 'not enough memory'],
  51: ['ENOSPC', 28, 'no space left on device'],
  52: ['ENOSYS', 38, 'function not implemented'],
  54: ['ENOTDIR', 20, 'not a directory'],
  55: ['ENOTEMPTY', 39, 'directory not empty'],
  58: ['ENOTSUP', 95, 'operation not supported on socket'],
  59: ['ENOTTY', 25, 'inappropriate ioctl for device'],
  61: ['EOVERFLOW', 75, 'value too large for defined data type'],
  63: ['EPERM', 1, 'operation not permitted'],
  64: ['EPIPE', 32, 'broken pipe'],
  68: ['ERANGE', 34, 'result too large'],
  69: ['EROFS', 30, 'read-only file system'],
  70: ['ESPIPE', 29, 'invalid seek'],
  74: ['ETXTBSY', 26, 'text file is busy'],
  75: ['EXDEV', 18, 'cross-device link not permitted'],
  // Outside every preopened directory: what a Linux process sees for a path it may not reach.
  76: ['EACCES', 13, 'permission denied'],
};

export interface SystemError extends Error {
  errno: number;
  code: string;
  syscall: string;
  path?: string;
  dest?: string;
}

/** `ENOENT: no such file or directory, open '/x'` with errno/code/syscall/path, as Node's fs throws. */
export function systemError(wasiErrno: number, syscall: string, path?: string, dest?: string): SystemError {
  const known = ERRNO[wasiErrno];
  const [code, errno, message] = known ?? [`E${wasiErrno}`, wasiErrno, std.strerror(wasiErrno)];
  let text = `${code}: ${message}, ${syscall}`;
  if (path !== undefined) text += ` '${path}'`;
  if (dest !== undefined) text += ` -> '${dest}'`;
  const err = new Error(text) as SystemError;
  err.errno = -errno;
  err.code = code;
  err.syscall = syscall;
  if (path !== undefined) err.path = path;
  if (dest !== undefined) err.dest = dest;
  return err;
}

/** Node's ERR_* errors (TypeError with a code). */
export function codedError(code: string, message: string, base: ErrorConstructor = Error): Error & { code: string } {
  const err = new base(message) as Error & { code: string };
  err.code = code;
  return err;
}

/** Linux errno names and numbers, for os.constants.errno. */
export function errnoConstants(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [code, errno] of Object.values(ERRNO)) out[code] = errno;
  return out;
}
