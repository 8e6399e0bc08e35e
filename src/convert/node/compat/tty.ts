// node:tty: isatty over WASI's fd_fdstat; the streams are process.stdout/stderr/stdin's classes.
import { os } from './quickjs.js';
import { ReadStream, WriteStream } from './stdio.js';

export const isatty = (fd: number): boolean => os.isatty(fd);
export { ReadStream, WriteStream };
export default { isatty, ReadStream, WriteStream };
