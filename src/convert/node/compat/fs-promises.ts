// node:fs/promises.
import { promises } from './fs.js';

export const { access, appendFile, chmod, chown, copyFile, cp, lstat, mkdir, mkdtemp, readdir, readFile, readlink, realpath, rename, rm, rmdir, stat, symlink, truncate, unlink, utimes, writeFile, constants } = promises;
export default promises;
