// Builds corpus images from recipes the way `docker build` does, with Debian's own tools and packages:
//   layer 0  debootstrap --variant=minbase <suite> (shared by every recipe of the suite)
//   layer 1  RUN apt-get update && apt-get install … && apt-get purge … && rm -rf /var/lib/apt/lists/*
//            (shared by recipes installing the same packages)
//   layer 2  COPY the recipe's files (+ npm packages)
//   layer 3  RUN the recipe's commands (when it has any)
// Each RUN executes in an overlayfs stack of the layers below (test/corpus/chroot.sh), so its upper directory is
// exactly what the step changed, deletions included; layers.ts turns it into an OCI layer. A layer is cached by
// what it is made of (recipe data, the builder's own code, the layers below) and stays valid while every
// Debian package it installed still has the version it was built with.
import { randomBytes } from 'node:crypto';
import { chmod, copyFile, cp, link, mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hexOf, sha256 } from '../../src/oci/digest.js';
import { OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import type { ImageConfig, ImageIndex, ImageManifest } from '../../src/oci/types.js';
import { parseStanzas, staleVersions, suiteIndex, DEBIAN_MIRROR, type Versions } from './debian.js';
import { exec, execText } from './exec.js';
import { layerFromUpper, type LayerBlob } from './layers.js';
import { canonicalJson, hashOf, imageEnv, recipeProblem, type Recipe, type Suite } from './recipe.js';
import { verifyLayers } from './verify.js';

/** The corpus sources (test/corpus), also when this runs compiled from dist/test/corpus. */
const HERE = dirname(fileURLToPath(import.meta.url)).replace(/\/dist\/test\/corpus$/, '/test/corpus');
export const CHROOT_SH = join(HERE, 'chroot.sh');
/** The machinery every layer goes through: a change to it rebuilds the corpus. */
const BUILDER_FILES = ['layers.ts', 'chroot.sh'];
/**
 * Versions of how each step makes its layer, beyond its inputs (which are hashed): bump one when changing that
 * step's code (runStep counts for install and run), so the layers it made are rebuilt. Code text is not hashed:
 * tsx and tsc compile it differently, and the corpus must be the same from both.
 */
const STEP_VERSIONS = { base: 1, install: 1, copy: 1, run: 1, image: 1 } as const;
/** Timestamp of the COPY layer's files and of the image config (files come from the recipe, not a checkout). */
const COPY_MTIME = new Date('2025-01-01T00:00:00Z');

export interface BuildContext {
  /** Cache root: debs/, apt/, layers/, images/, tmp/. */
  root: string;
  /** Appends build output here. */
  log: string;
  /** Progress lines for a person. */
  say: (line: string) => void;
  /** Debian's current versions per suite (undefined: the index could not be read; cached layers are trusted). */
  index: Map<Suite, Versions | undefined>;
}

export interface LayerRecord {
  id: string;
  createdBy: string;
  /** diff_ids of the layers below, bottom first: the layer is only valid on top of exactly these. */
  parents: string[];
  blob: LayerBlob;
  /** Debian packages installed after this step (when it changed dpkg's status). */
  versions?: Record<string, string>;
  seconds: number;
}

export interface BuiltLayer {
  record: LayerRecord;
  dir: string;
  /** The overlayfs upper directory: the step's changes, lower layers' deletions as overlayfs whiteouts. */
  upper: string;
  blobFile: string;
}

let machineryHash: Promise<string> | undefined;
/** What a layer's bytes depend on besides its inputs: the shared machinery's source and the step's version. */
async function builderVersion(step: keyof typeof STEP_VERSIONS): Promise<string> {
  machineryHash ??= Promise.all(BUILDER_FILES.map((f) => readFile(join(HERE, f), 'utf8'))).then((texts) => hashOf(...texts));
  return hashOf(await machineryHash, step, String(STEP_VERSIONS[step]));
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** Why a cached layer cannot be used, or undefined when it can. */
function layerStale(record: LayerRecord | undefined, parents: readonly string[], index: Versions | undefined): string | undefined {
  if (!record) return 'not built';
  if (canonicalJson(record.parents) !== canonicalJson(parents)) return 'the layers below it were rebuilt';
  if (record.versions && index) {
    const changed = staleVersions(record.versions, index);
    if (changed.length > 0) return `Debian has new versions: ${changed.slice(0, 5).join(', ')}${changed.length > 5 ? ` and ${changed.length - 5} more` : ''}`;
  }
  return undefined;
}

async function installedVersions(upper: string): Promise<Record<string, string> | undefined> {
  try {
    return Object.fromEntries(parseStanzas(await readFile(join(upper, 'var/lib/dpkg/status'), 'utf8'), true));
  } catch {
    return undefined;
  }
}

/** Marks a cache entry as used (pruneCorpus keeps what any worktree used lately). */
async function touch(dir: string): Promise<void> {
  const now = new Date();
  await utimes(dir, now, now).catch(() => undefined);
}

/** Entries of the cache not used for `maxAgeDays`: other worktrees' recipes stay while they are in use. */
export async function pruneCorpus(root: string, maxAgeDays: number, say: (line: string) => void): Promise<void> {
  const cutoff = Date.now() - maxAgeDays * 86400_000;
  for (const kind of ['layers', 'images']) {
    let names: string[] = [];
    try {
      names = await readdir(join(root, kind));
    } catch {
      continue;
    }
    for (const name of names) {
      const dir = join(root, kind, name);
      if ((await stat(dir)).mtimeMs >= cutoff) continue;
      say(`pruning ${kind}/${name} (unused for ${maxAgeDays} days)`);
      await rm(dir, { recursive: true, force: true });
    }
  }
  await rm(join(root, 'tmp'), { recursive: true, force: true });
}

/** Moves a finished build into place, replacing a stale entry. */
async function publish(tmp: string, final: string): Promise<void> {
  if (await exists(final)) {
    const trash = `${final}.old-${randomBytes(4).toString('hex')}`;
    await rename(final, trash);
    await rename(tmp, final);
    await rm(trash, { recursive: true, force: true });
  } else {
    await mkdir(dirname(final), { recursive: true });
    await rename(tmp, final);
  }
}

type StepBody = (scratch: string, upper: string) => Promise<void>;

/** Builds (or reuses) one cached layer. */
async function layer(ctx: BuildContext, id: string, createdBy: string, below: readonly BuiltLayer[], suite: Suite, body: StepBody): Promise<BuiltLayer> {
  const dir = join(ctx.root, 'layers', id);
  const parents = below.map((l) => l.record.blob.diffId);
  const cached = await readJson<LayerRecord>(join(dir, 'layer.json'));
  const stale = layerStale(cached, parents, ctx.index.get(suite));
  if (!stale && cached) {
    await touch(dir);
    return { record: cached, dir, upper: join(dir, 'upper'), blobFile: join(dir, 'layer.tar.gz') };
  }
  ctx.say(`building layer ${id} (${stale}): ${createdBy.slice(0, 120)}`);
  const started = Date.now();
  const tmp = join(ctx.root, 'tmp', `${id}-${randomBytes(4).toString('hex')}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(join(tmp, 'upper'), { recursive: true });
  try {
    await body(tmp, join(tmp, 'upper'));
    const blob = await layerFromUpper(join(tmp, 'upper'), join(tmp, 'layer.tar.gz'), join(tmp, 'scratch'));
    const versions = await installedVersions(join(tmp, 'upper'));
    const record: LayerRecord = { id, createdBy, parents, blob, ...(versions ? { versions } : {}), seconds: Math.round((Date.now() - started) / 100) / 10 };
    await writeFile(join(tmp, 'layer.json'), JSON.stringify(record, null, 2));
    await rm(join(tmp, 'scratch'), { recursive: true, force: true });
    await rm(join(tmp, 'work'), { recursive: true, force: true });
    await rm(join(tmp, 'merged'), { recursive: true, force: true });
    await publish(tmp, dir);
    ctx.say(`layer ${id}: ${record.blob.size} bytes gzipped, ${record.seconds} s`);
    return { record, dir, upper: join(dir, 'upper'), blobFile: join(dir, 'layer.tar.gz') };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** Runs `script` with /bin/sh -c on top of `below`, as a Dockerfile RUN; its changes land in `upper`. */
async function runStep(ctx: BuildContext, scratch: string, upper: string, below: readonly BuiltLayer[], suite: Suite, script: string): Promise<void> {
  const debs = join(ctx.root, 'debs', suite, 'apt');
  await mkdir(join(debs, 'partial'), { recursive: true });
  const envFile = join(scratch, 'env');
  await writeFile(envFile, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root', 'DEBIAN_FRONTEND=noninteractive'].map((e) => e + '\0').join(''));
  const lowers = [...below].reverse().map((l) => l.upper).join(':');
  await exec(
    'unshare',
    ['--mount', '--pid', '--fork', '--kill-child', 'bash', CHROOT_SH, '--lower', lowers, '--upper', upper, '--work', join(scratch, 'work'), '--merged', join(scratch, 'merged'),
      // Like BuildKit's cache mounts: downloaded .debs are shared between builds and never part of a layer.
      '--bind', `${debs}:/var/cache/apt/archives`, '--bind', '/etc/resolv.conf:/etc/resolv.conf', '--env-file', envFile, '--', '/bin/sh', '-c', script],
    { log: ctx.log, timeoutMs: 30 * 60_000 },
  );
}

async function baseLayer(ctx: BuildContext, suite: Suite): Promise<BuiltLayer> {
  const debootstrap = (await execText('dpkg-query', ['-W', '-f=${Version}', 'debootstrap'])).trim();
  const createdBy = `debootstrap --variant=minbase ${suite} / ${DEBIAN_MIRROR} (debootstrap ${debootstrap})`;
  const id = `base-${suite}-${hashOf('base', suite, debootstrap, await builderVersion('base'))}`;
  return layer(ctx, id, createdBy, [], suite, async (_scratch, upper) => {
    const cache = join(ctx.root, 'debs', suite, 'debootstrap');
    await mkdir(cache, { recursive: true });
    // Its own mount namespace: the /proc and /sys debootstrap mounts in the target vanish with it, even on failure.
    await exec('unshare', ['--mount', '--propagation', 'private', 'debootstrap', '--variant=minbase', `--cache-dir=${cache}`, suite, upper, DEBIAN_MIRROR], {
      log: ctx.log,
      timeoutMs: 30 * 60_000,
    });
    // What a container image leaves to the runtime: device nodes, the host's resolver, apt's downloaded lists.
    await exec('find', [join(upper, 'dev'), join(upper, 'proc'), join(upper, 'sys'), join(upper, 'var/lib/apt/lists'), '-mindepth', '1', '-maxdepth', '1', '-exec', 'rm', '-rf', '{}', '+']);
    await exec('find', [join(upper, 'var/cache/apt/archives'), '-name', '*.deb', '-delete']);
    await rm(join(upper, 'var/cache/apt/pkgcache.bin'), { force: true });
    await rm(join(upper, 'var/cache/apt/srcpkgcache.bin'), { force: true });
    await writeFile(join(upper, 'etc/resolv.conf'), '');
    await mkdir(join(upper, 'var/lib/apt/lists/partial'), { recursive: true });
  });
}

function installScript(r: Recipe): string {
  const steps = ['apt-get update -qq', `apt-get install -y -qq --no-install-recommends ${r.packages.join(' ')}`];
  if (r.purge?.length) steps.push(`apt-get purge -y -qq --auto-remove ${r.purge.join(' ')}`);
  steps.push('rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin');
  return steps.join(' && ');
}

async function installLayer(ctx: BuildContext, r: Recipe, base: BuiltLayer): Promise<BuiltLayer> {
  const script = installScript(r);
  const id = `install-${r.suite}-${hashOf('install', base.record.id, script, await builderVersion('install'))}`;
  return layer(ctx, id, `RUN ${script}`, [base], r.suite, (scratch, upper) => runStep(ctx, scratch, upper, [base], r.suite, script));
}

async function copyLayer(ctx: BuildContext, r: Recipe, below: readonly BuiltLayer[]): Promise<BuiltLayer | undefined> {
  const files = Object.entries(r.files ?? {});
  if (files.length === 0 && !r.npm) return undefined;
  const id = `copy-${hashOf('copy', canonicalJson(r.files ?? {}), canonicalJson(r.npm ?? null), await builderVersion('copy'))}`;
  const createdBy = `COPY ${files.map(([p]) => p).join(' ')}${r.npm ? ` + npm install ${r.npm.packages.join(' ')} in ${r.npm.dir}` : ''}`;
  return layer(ctx, id, createdBy, below, r.suite, async (scratch, upper) => {
    for (const [path, spec] of files) {
      const content = typeof spec === 'string' ? spec : spec.content;
      const mode = typeof spec === 'string' || spec.mode === undefined ? (content.startsWith('#!') ? 0o755 : 0o644) : spec.mode;
      const target = join(upper, path);
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, content);
      await chmod(target, mode);
    }
    if (r.npm) {
      const staging = join(scratch, 'npm');
      await mkdir(staging, { recursive: true });
      await exec('npm', ['install', '--prefix', staging, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--ignore-scripts', '--omit=dev', ...r.npm.packages], { log: ctx.log });
      await mkdir(join(upper, r.npm.dir), { recursive: true });
      await cp(join(staging, 'node_modules'), join(upper, r.npm.dir, 'node_modules'), { recursive: true, verbatimSymlinks: true });
    }
    // Fixed times: the layer's bytes depend on the recipe only.
    await exec('find', [upper, '-exec', 'touch', '-h', '-d', COPY_MTIME.toISOString(), '{}', '+']);
  });
}

async function runLayer(ctx: BuildContext, r: Recipe, below: readonly BuiltLayer[]): Promise<BuiltLayer | undefined> {
  if (!r.run?.length) return undefined;
  const script = r.run.join(' && ');
  const id = `run-${hashOf('run', ...below.map((l) => l.record.id), script, await builderVersion('run'))}`;
  return layer(ctx, id, `RUN ${script}`, below, r.suite, (scratch, upper) => runStep(ctx, scratch, upper, below, r.suite, script));
}

export interface ImageRecord {
  name: string;
  key: string;
  layers: Array<{ id: string; diffId: string; createdBy: string }>;
  manifestDigest: string;
  builtAt: string;
}

export interface BuiltImage {
  recipe: Recipe;
  /** OCI image layout; the image's tag in it is the recipe's name. */
  layout: string;
  /** Overlay lower directories of the image's layers, top first (what the native run stacks). */
  lowers: string[];
  config: ImageConfig;
  record: ImageRecord;
}

function imageConfig(r: Recipe, layers: readonly BuiltLayer[]): ImageConfig {
  const c = r.config;
  return {
    created: COPY_MTIME.toISOString(),
    architecture: 'amd64',
    os: 'linux',
    config: {
      Env: imageEnv(r),
      ...(c.Entrypoint ? { Entrypoint: c.Entrypoint } : {}),
      ...(c.Cmd ? { Cmd: c.Cmd } : {}),
      ...(c.WorkingDir ? { WorkingDir: c.WorkingDir } : {}),
      ...(c.User ? { User: c.User } : {}),
    },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.record.blob.diffId) },
    history: layers.map((l) => ({ created: COPY_MTIME.toISOString(), created_by: l.record.createdBy })),
  };
}

async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch {
    await copyFile(from, to);
  }
}

async function writeLayout(dir: string, r: Recipe, layers: readonly BuiltLayer[], config: ImageConfig): Promise<string> {
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  for (const l of layers) await linkOrCopy(l.blobFile, join(blobs, hexOf(l.record.blob.digest)));
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = sha256(configBytes);
  await writeFile(join(blobs, hexOf(configDigest)), configBytes);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: configDigest, size: configBytes.length },
    layers: layers.map((l) => ({ mediaType: OCI_LAYER_GZIP, digest: l.record.blob.digest, size: l.record.blob.size })),
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const manifestDigest = sha256(manifestBytes);
  await writeFile(join(blobs, hexOf(manifestDigest)), manifestBytes);
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      {
        mediaType: OCI_MANIFEST,
        digest: manifestDigest,
        size: manifestBytes.length,
        platform: { os: 'linux', architecture: 'amd64' },
        annotations: { 'org.opencontainers.image.ref.name': r.name },
      },
    ],
  };
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  return manifestDigest;
}

/** The image of `r`, from the cache when every layer is current, else built (root, network to Debian). */
export async function buildImage(ctx: BuildContext, r: Recipe): Promise<BuiltImage> {
  const problem = recipeProblem(r);
  if (problem) throw new Error(problem);
  if (!ctx.index.has(r.suite)) {
    const idx = await suiteIndex(join(ctx.root, 'apt'), r.suite);
    if (idx?.warning) ctx.say(idx.warning);
    if (!idx) ctx.say(`Debian's ${r.suite} index cannot be fetched: cached layers are used as they are`);
    ctx.index.set(r.suite, idx?.versions);
  }
  const base = await baseLayer(ctx, r.suite);
  const install = await installLayer(ctx, r, base);
  const layers: BuiltLayer[] = [base, install];
  const copy = await copyLayer(ctx, r, layers);
  if (copy) layers.push(copy);
  const run = await runLayer(ctx, r, layers);
  if (run) layers.push(run);

  const config = imageConfig(r, layers);
  const key = hashOf(canonicalJson(config), await builderVersion('image'));
  const dir = join(ctx.root, 'images', `${r.name}-${key}`);
  const lowers = [...layers].reverse().map((l) => l.upper);
  const cached = await readJson<ImageRecord>(join(dir, 'image.json'));
  if (cached && canonicalJson(cached.layers.map((l) => l.diffId)) === canonicalJson(config.rootfs.diff_ids)) {
    await touch(dir);
    return { recipe: r, layout: join(dir, 'layout'), lowers, config, record: cached };
  }
  const tmp = join(ctx.root, 'tmp', `image-${r.name}-${randomBytes(4).toString('hex')}`);
  try {
    const entries = await verifyLayers(layers.map((l) => l.blobFile), lowers, join(tmp, 'verify'));
    ctx.say(`verified: ${entries} entries from the layers equal the build's tree`);
    await rm(join(tmp, 'verify'), { recursive: true, force: true });
    const manifestDigest = await writeLayout(join(tmp, 'layout'), r, layers, config);
    const record: ImageRecord = {
      name: r.name,
      key,
      layers: layers.map((l) => ({ id: l.record.id, diffId: l.record.blob.diffId, createdBy: l.record.createdBy })),
      manifestDigest,
      builtAt: new Date().toISOString(),
    };
    await writeFile(join(tmp, 'image.json'), JSON.stringify(record, null, 2));
    await publish(tmp, dir);
    return { recipe: r, layout: join(dir, 'layout'), lowers, config, record };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

