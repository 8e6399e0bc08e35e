// The QuickJS-for-WASI runtime the Node tests convert with: scripts/runtimes/quickjs/build.sh (cached by its
// inputs, serialized by flock), exposed as a RuntimeCatalog.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { NpmRuntimeCatalog, type QuickJsRuntime, type RuntimeCatalog } from '../../../src/convert/runtimes.js';

let built: Promise<{ dir: string; version: string }> | undefined;

export function quickjsBuild(): Promise<{ dir: string; version: string }> {
  built ??= new Promise((resolve, reject) => {
    const cache = process.env.BOXPROXY_RUNTIME_CACHE || join(homedir(), '.cache', 'boxproxy', 'runtimes');
    const child = spawn('bash', ['scripts/runtimes/quickjs/build.sh', '--cache-dir', cache], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-8000)));
    child.on('error', reject);
    child.on('close', async (code) => {
      if (code !== 0) return reject(new Error(`quickjs build failed (${code}):\n${err}`));
      const dir = out.trim().split('\n').pop() as string;
      const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { version: string };
      resolve({ dir, version: manifest.version });
    });
  });
  return built;
}

export async function quickjsCatalog(): Promise<RuntimeCatalog> {
  const { dir, version } = await quickjsBuild();
  const npm = new NpmRuntimeCatalog();
  const runtime: QuickJsRuntime = { version, wasmPath: join(dir, 'qjs.wasm'), artifact: `quickjs@${version} (build ${dir})` };
  return { ruby: (v) => npm.ruby(v), quickjs: async () => runtime };
}
