// node:os basics. A Box has no view of the host: values come from the environment or are fixed.
import { config } from './config.js';
import { errnoConstants } from './errors.js';
import { process } from './process.js';

export const EOL = '\n';
export const devNull = '/dev/null';
export const platform = (): string => 'linux';
export const type = (): string => 'Linux';
export const arch = (): string => config.arch;
export const machine = (): string => (config.arch === 'x64' ? 'x86_64' : config.arch === 'arm64' ? 'aarch64' : config.arch);
export const release = (): string => '';
export const version = (): string => '';
export const endianness = (): 'LE' => 'LE';
export const homedir = (): string => process.env.HOME ?? '/root';
export const tmpdir = (): string => (process.env.TMPDIR ?? '/tmp').replace(/(.)\/$/, '$1');
export const hostname = (): string => process.env.HOSTNAME ?? 'localhost';
export const uptime = (): number => process.uptime();
export const loadavg = (): number[] => [0, 0, 0];
export const totalmem = (): number => 4 * 1024 ** 3;
export const freemem = (): number => 4 * 1024 ** 3;
export const availableParallelism = (): number => 1;
export const cpus = (): Array<{ model: string; speed: number; times: Record<string, number> }> => [
  { model: 'wasm32', speed: 0, times: { user: 0, nice: 0, sys: 0, idle: 0, irq: 0 } },
];
export const networkInterfaces = (): Record<string, never[]> => ({});
export const userInfo = (): { uid: number; gid: number; username: string; homedir: string; shell: string | null } => ({
  uid: 0,
  gid: 0,
  username: process.env.USER ?? 'root',
  homedir: homedir(),
  shell: process.env.SHELL ?? null,
});
export const constants = {
  errno: errnoConstants(),
  signals: { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 },
  priority: { PRIORITY_LOW: 19, PRIORITY_NORMAL: 0, PRIORITY_HIGH: -7 },
};

export default {
  EOL, devNull, platform, type, arch, machine, release, version, endianness, homedir, tmpdir, hostname, uptime, loadavg,
  totalmem, freemem, availableParallelism, cpus, networkInterfaces, userInfo, constants,
};
