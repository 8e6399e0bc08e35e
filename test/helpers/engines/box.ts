// A Box, read from an OCI image layout and set up the way runwasi runs one, with no boxproxy runner code: layers
// unpacked in order by GNU tar into one rootfs preopened as "/", argv = Entrypoint + Cmd, env = the config's Env.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, realpath, rename } from 'node:fs/promises';
import { isAbsolute, join, posix } from 'node:path';
import { LABEL_DIRS, LABEL_RUNNER, RUNNER_WASI, type BoxRunnerName } from '../../../src/box/format.js';
import { readModuleInfo } from '../../../src/convert/wasm-imports.js';
import type { ImageConfig, ImageIndex, ImageManifest } from '../../../src/oci/types.js';
import { makeTempDir, run } from '../proc.js';
import { splitEnv, type WasiRunSpec } from './types.js';

/** What a caller changes, like `docker run`: args replace Cmd; env `K=V` sets, `K` passes the caller's value. */
export interface BoxRunOptions {
  args?: string[];
  env?: string[];
  /** `host:guest` directories preopened besides the rootfs. */
  dirs?: string[];
}

export interface EngineBox {
  manifestDigest: string;
  runner: BoxRunnerName;
  rootfs: string;
  config: ImageConfig;
  /** Host path of the module (Entrypoint[0] in the rootfs). */
  module: string;
  /** A WASI reactor (no `_start` export, like npm's ruby.wasm): only a JS host can drive it, no WASI engine. */
  reactor: boolean;
}

async function blob(layout: string, digest: string): Promise<Buffer> {
  return readFile(join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)));
}

/** The Box manifest of a layout: the one named `reference` (or the only one), through an index's wasip1/wasm entry. */
async function boxManifest(layout: string, reference: string): Promise<{ digest: string; manifest: ImageManifest }> {
  const top = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as ImageIndex;
  const named = reference ? top.manifests.filter((m) => m.annotations?.['org.opencontainers.image.ref.name'] === reference) : top.manifests;
  if (named.length !== 1) throw new Error(`${layout}: ${named.length} manifests named ${JSON.stringify(reference)}`);
  let entry = named[0] as ImageIndex['manifests'][number];
  for (let depth = 0; depth < 4; depth++) {
    const doc = JSON.parse((await blob(layout, entry.digest)).toString('utf8')) as ImageManifest & ImageIndex;
    if (!Array.isArray(doc.manifests)) return { digest: entry.digest, manifest: doc };
    const wasm = doc.manifests.find((m) => m.platform?.os === 'wasip1' && m.platform.architecture === 'wasm');
    if (!wasm) throw new Error(`${layout}: index ${entry.digest} has no wasip1/wasm entry`);
    entry = wasm;
  }
  throw new Error(`${layout}: indexes nested too deep`);
}

const unpacked = new Map<string, Promise<string>>();
let unpackRoot: Promise<string> | undefined;

/** Unpacks the layers with tar (once per manifest digest and process; the engines only read the rootfs). */
async function unpack(layout: string, digest: string, manifest: ImageManifest): Promise<string> {
  unpackRoot ??= makeTempDir('engine-rootfs');
  const dir = join(await unpackRoot, createHash('sha256').update(digest).digest('hex').slice(0, 16));
  if (existsSync(dir)) return dir;
  const partial = `${dir}.partial`;
  await mkdir(partial, { recursive: true });
  for (const layer of manifest.layers) {
    // GNU tar detects gzip itself; ownership is the caller's, as in a rootless container.
    await run('tar', ['-x', '--no-same-owner', '-f', join(layout, 'blobs', 'sha256', layer.digest.slice('sha256:'.length)), '-C', partial]);
  }
  await rename(partial, dir);
  return dir;
}

export async function readEngineBox(layout: string, reference = ''): Promise<EngineBox> {
  const { digest, manifest } = await boxManifest(layout, reference);
  const config = JSON.parse((await blob(layout, manifest.config.digest)).toString('utf8')) as ImageConfig;
  if (config.architecture !== 'wasm') throw new Error(`${layout}: ${digest} is not a Box (architecture ${config.architecture})`);
  let rootfs = unpacked.get(digest);
  if (!rootfs) {
    rootfs = unpack(layout, digest, manifest);
    unpacked.set(digest, rootfs);
  }
  const runner = (config.config?.Labels?.[LABEL_RUNNER] ?? RUNNER_WASI) as BoxRunnerName;
  const root = await realpath(await rootfs);
  const module = await moduleIn(root, config.config?.Entrypoint?.[0]);
  const reactor = !readModuleInfo(await readFile(module)).exports.some((e) => e.kind === 'func' && e.name === '_start');
  return { manifestDigest: digest, runner, rootfs: root, config, module, reactor };
}

/** The module's host path; a symlinked one must resolve inside the rootfs too (an absolute target would leave it). */
async function moduleIn(root: string, guest: string | undefined): Promise<string> {
  if (!guest || !isAbsolute(guest)) throw new Error(`the Box's Entrypoint[0] is not an absolute module path: ${JSON.stringify(guest)}`);
  const module = await realpath(inRootfs(root, guest));
  if (!module.startsWith(root + '/')) throw new Error(`the Box's module ${guest} resolves outside its rootfs`);
  return module;
}

/** A rootfs path as a host path, refusing what leaves the rootfs. */
function inRootfs(rootfs: string, guest: string): string {
  const host = join(rootfs, posix.normalize('/' + guest));
  if (host !== rootfs && !host.startsWith(rootfs + '/')) throw new Error(`${guest} leaves the rootfs`);
  return host;
}

/**
 * The run runwasi would make of the Box: module = Entrypoint[0] in the rootfs, argv = Entrypoint + (args ?? Cmd),
 * env = the config's Env, rootfs preopened as "/". WASI preview1 has no working directory and none of the three
 * engines can set one, so WorkingDir travels as PWD, as boxproxy's runner passes it. The rootfs directories of the
 * label dev.boxproxy.dirs (unwrapped `wasmtime --dir a::b`) are preopened at their guest paths too.
 */
export async function engineRunSpec(box: EngineBox, opts: BoxRunOptions = {}): Promise<WasiRunSpec> {
  const cfg = box.config.config ?? {};
  const [moduleGuest = '', ...fixed] = cfg.Entrypoint ?? [];
  const env = new Map((cfg.Env ?? []).map(splitEnv));
  env.set('PWD', cfg.WorkingDir || '/');
  for (const item of opts.env ?? []) {
    const [k, v] = splitEnv(item);
    if (item.includes('=')) env.set(k, v);
    else if (process.env[k] !== undefined) env.set(k, process.env[k] as string);
    else env.delete(k);
  }
  const preopens = [{ guest: '/', host: box.rootfs }];
  const mapped = cfg.Labels?.[LABEL_DIRS];
  for (const m of mapped ? (JSON.parse(mapped) as Array<{ guest: string; path: string }>) : []) {
    preopens.push({ guest: m.guest, host: inRootfs(box.rootfs, m.path) });
  }
  for (const d of opts.dirs ?? []) {
    const [host = '', guest = host] = d.split(':');
    preopens.push({ guest, host });
  }
  return {
    module: box.module,
    args: [moduleGuest, ...fixed, ...(opts.args ?? cfg.Cmd ?? [])],
    env: [...env].map(([k, v]) => `${k}=${v}`),
    preopens,
  };
}
