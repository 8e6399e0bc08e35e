// A private containerd (own root, state and socket in a temp dir) and `ctr` pulls through a hosts.toml mirror.
// containerd appends `?ns=<registry-host>` to every request it sends to a mirror, which is what boxproxy routes on.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, removeTempDir, run, startProcess, tail, waitUntil, type ManagedProcess, type RunResult } from './proc.js';

export interface MirrorEntry {
  /** Registry host as written in image references, e.g. `upstream.test:5000`; becomes containerd's `ns`. */
  registryHost: string;
  /** hosts.toml `server`: where containerd goes when no mirror answers. */
  server: string;
  /** Mirror URLs tried first, e.g. boxproxy's `http://127.0.0.1:PORT`. */
  mirrors: string[];
}

export interface PulledImage {
  name: string;
  /** Digest of the manifest (or index) the image's tag resolved to. */
  digest: string;
  mediaType: string;
}

export interface TestContainerd {
  readonly address: string;
  readonly hostsDir: string;
  readonly process: ManagedProcess;
  /** Writes `<hostsDir>/<registryHost>/hosts.toml`. */
  setMirror(entry: MirrorEntry): Promise<void>;
  /** `ctr images pull --hosts-dir ...`: fetches all content for this host's platform and unpacks it. */
  pull(ref: string, extraArgs?: string[]): Promise<RunResult>;
  /** The image record containerd keeps for `ref` after a pull. */
  image(ref: string): Promise<PulledImage | undefined>;
  ctr(args: readonly string[], opts?: { allowFailure?: boolean }): Promise<RunResult>;
  stop(): Promise<void>;
}

// Plugins needing more than a socket and a directory (CNI, kernel modules, block devices) or writing outside
// our root are turned off; pulls need only content, metadata, images and a snapshotter.
const DISABLED_PLUGINS = [
  'io.containerd.grpc.v1.cri',
  'io.containerd.internal.v1.opt',
  'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.zfs',
  'io.containerd.snapshotter.v1.devmapper',
  'io.containerd.snapshotter.v1.aufs',
  'io.containerd.tracing.processor.v1.otlp',
];

function tomlString(s: string): string {
  return JSON.stringify(s);
}

/** Renders a containerd hosts.toml (docs/hosts.md). */
export function hostsToml(entry: MirrorEntry): string {
  const lines = [`server = ${tomlString(entry.server)}`, ''];
  for (const mirror of entry.mirrors) {
    lines.push(`[host.${tomlString(mirror)}]`, `  capabilities = ["pull", "resolve"]`, '');
  }
  return lines.join('\n');
}

export async function startContainerd(): Promise<TestContainerd> {
  if (process.getuid?.() !== 0) throw new Error('containerd tests need root (containerd mounts snapshots and owns its socket)');
  const dir = await makeTempDir('containerd');
  const address = join(dir, 'containerd.sock');
  const hostsDir = join(dir, 'certs.d');
  await mkdir(hostsDir);
  const config = [
    'version = 2',
    `root = ${tomlString(join(dir, 'root'))}`,
    `state = ${tomlString(join(dir, 'state'))}`,
    `disabled_plugins = ${JSON.stringify(DISABLED_PLUGINS)}`,
    '',
    '[grpc]',
    `  address = ${tomlString(address)}`,
    '',
    '[ttrpc]',
    `  address = ${tomlString(join(dir, 'containerd.sock.ttrpc'))}`,
    '',
    '[debug]',
    '  address = ""',
    '  level = "info"',
    '',
    '[metrics]',
    '  address = ""',
    '',
  ].join('\n');
  const configFile = join(dir, 'config.toml');
  await writeFile(configFile, config);

  let proc: ManagedProcess | undefined;
  try {
    const started = await startProcess('containerd', 'containerd', ['--config', configFile], { logFile: join(dir, 'containerd.log') });
    proc = started;
    const ctr = (args: readonly string[], opts: { allowFailure?: boolean } = {}) =>
      run('ctr', ['--address', address, '--namespace', 'boxproxy-test', ...args], { ...opts, timeoutMs: 90_000 });
    await waitUntil('containerd to answer on its socket', async () => (await ctr(['version'], { allowFailure: true })).code === 0, {
      proc: started,
    });
    return {
      address,
      hostsDir,
      process: started,
      ctr,
      async setMirror(entry) {
        await mkdir(join(hostsDir, entry.registryHost), { recursive: true });
        await writeFile(join(hostsDir, entry.registryHost, 'hosts.toml'), hostsToml(entry));
      },
      async pull(ref, extraArgs = []) {
        // The native snapshotter copies files instead of mounting overlays: works in any container we run in.
        const result = await ctr(['images', 'pull', '--hosts-dir', hostsDir, '--snapshotter', 'native', ...extraArgs, ref], { allowFailure: true });
        if (result.code !== 0) {
          throw new Error(`ctr images pull ${ref} failed (exit ${result.code}):\n${tail(result.stderr || result.stdout)}\ncontainerd log:\n${tail(await started.log(), 15)}`);
        }
        return result;
      },
      async image(ref) {
        // `ctr images ls` columns: REF TYPE DIGEST SIZE PLATFORMS LABELS
        const out = (await ctr(['images', 'ls'])).stdout;
        for (const line of out.split('\n').slice(1)) {
          const [name, mediaType, digest] = line.trim().split(/\s+/);
          if (name === ref && mediaType && digest) return { name, mediaType, digest };
        }
        return undefined;
      },
      async stop() {
        await started.stop();
        await removeTempDir(dir);
      },
    };
  } catch (err) {
    await proc?.stop();
    await removeTempDir(dir);
    throw err;
  }
}
