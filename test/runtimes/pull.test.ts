// Runtime registries against a real docker-registry on loopback: push a (fake, tiny) catalog entry, pull it into
// an empty catalog, find it through OciRuntimeCatalog; corrupt, missing and foreign artifacts are refused.
import assert from 'node:assert/strict';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { OCI_LAYER_GZIP, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { hexOf, sha256 } from '../../src/oci/digest.js';
import type { ImageManifest } from '../../src/oci/types.js';
import { RUNTIME_ARTIFACT_TYPE } from '../../src/runtimes/artifact.js';
import { OciRuntimeCatalog } from '../../src/runtimes/catalog.js';
import { packageRuntime } from '../../src/runtimes/package.js';
import { RuntimeStore } from '../../src/runtimes/store.js';
import { pullRuntime, pushArtifact, pushRuntime, RuntimeNotInRegistryError } from '../../src/runtimes/pull.js';
import { dir, elf, file, symlink } from '../convert/helpers.js';
import { hostPlatform } from '../helpers/images.js';
import { makeTempDir, removeTempDir, skipUnlessTools, run, type RunResult } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { convertThrough, pushSpec, startBoxProxy } from '../integration/boxes-helpers.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
// A WebAssembly module header: enough to stand in for python.wasm (nothing here runs it).
const WASM_PLACEHOLDER = Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);

const skip = skipUnlessTools('docker-registry');
let registry: TestRegistry;
let root: string;
let repo: string;

before(async () => {
  if (skip) return;
  root = await makeTempDir('runtimes-pull');
  registry = await startRegistry();
  repo = `${registry.host}/runtimes`;
});
after(async () => {
  await registry?.stop();
  if (root) await removeTempDir(root);
});

/** Adds a fake python runtime entry (placeholder python.wasm, one stdlib file) to a catalog. */
async function addFakePython(store: RuntimeStore, version: string): Promise<string> {
  const src = await makeTempDir('fake-python');
  try {
    const minor = version.split('.').slice(0, 2).join('.');
    await writeFile(join(src, 'python.wasm'), WASM_PLACEHOLDER);
    await writeFile(join(src, 'os.py'), `# fake stdlib of ${version}\n`);
    const descriptor = await packageRuntime(store, {
      name: 'python',
      version,
      files: [
        { path: 'python.wasm', hostPath: join(src, 'python.wasm'), mode: 0o755 },
        { path: `lib/python${minor}/os.py`, hostPath: join(src, 'os.py'), mode: 0o644 },
      ],
      config: { name: 'python', version, files: { interpreter: 'python.wasm', stdlib: `lib/python${minor}`, prefix: '' } },
      mtime: 0,
    });
    return descriptor.digest;
  } finally {
    await removeTempDir(src);
  }
}

async function manifestOf(store: RuntimeStore, digest: string): Promise<ImageManifest> {
  return JSON.parse((await store.readBlob(digest)).toString('utf8')) as ImageManifest;
}

/** Files under blobs/sha256 (names only): no temporary files may be left behind. */
async function blobNames(store: RuntimeStore): Promise<string[]> {
  return (await readdir(join(store.dir, 'blobs', 'sha256')).catch(() => [] as string[])).sort();
}

/** `boxproxy <args>` from the sources, as a user runs it; a first CPython build may take minutes. */
function boxproxy(args: string[]): Promise<RunResult> {
  return run(process.execPath, ['--import', 'tsx', MAIN, ...args], { allowFailure: true, timeoutMs: 900_000 });
}

describe('runtime registry (docker-registry on loopback)', { skip }, () => {
  test('push, then pull into an empty catalog: identical digests and bytes; OciRuntimeCatalog finds it', async () => {
    const source = new RuntimeStore(join(root, 'source'));
    const digest = await addFakePython(source, '3.11.9');
    const pushed = await pushRuntime(source, 'python', '3.11', repo);
    assert.deepEqual(pushed, { reference: `${repo}:python-3.11`, digest });

    const target = new RuntimeStore(join(root, 'pulled'));
    const entry = await pullRuntime(target, repo, 'python', '3.11.4');
    assert.equal(entry.descriptor.digest, digest);
    assert.deepEqual([entry.name, entry.version], ['python', '3.11.9']);
    assert.deepEqual(await blobNames(target), await blobNames(source));
    const manifest = await manifestOf(target, digest);
    for (const blob of [manifest.config, ...manifest.layers]) {
      assert.deepEqual(await target.readBlob(blob.digest), await source.readBlob(blob.digest), blob.digest);
    }
    assert.deepEqual(await target.list(), await source.list());

    // A conversion's catalog pulls on a miss: empty store, registry configured.
    const catalog = new OciRuntimeCatalog({ dir: join(root, 'on-demand'), registry: repo });
    const python = await catalog.python('3.11');
    assert.ok(python);
    assert.equal(python.version, '3.11.9');
    assert.equal(python.artifact, `python@3.11.9 ${digest}`);
    assert.deepEqual(await readFile(python.wasmPath), WASM_PLACEHOLDER);
    assert.match(await readFile(join(python.stdlibDir, 'os.py'), 'utf8'), /fake stdlib of 3\.11\.9/);
    // Now local: asking again (a new catalog object, as the next conversion) does not touch the registry.
    const pullsBefore = await registry.countRequests('GET', '/v2/runtimes/manifests/python-3.11');
    const again = await new OciRuntimeCatalog({ dir: join(root, 'on-demand'), registry: repo }).python('3.11.2');
    assert.equal(again?.artifact, python.artifact);
    assert.equal(await registry.countRequests('GET', '/v2/runtimes/manifests/python-3.11'), pullsBefore);
  });

  test('the local entry of the wanted major.minor wins; a miss pulls exactly <name>-<major.minor>, else the nearest local', async () => {
    const dir = join(root, 'nearest');
    const local = new RuntimeStore(dir);
    const local310 = await addFakePython(local, '3.10.1');
    const catalog = new OciRuntimeCatalog({ dir, registry: repo });
    assert.match((await catalog.python('3.10'))?.artifact ?? '', new RegExp(local310));
    // The same bytes as the first test pushed (fixed mtime): pushing again changes nothing when both run.
    const src = new RuntimeStore(join(root, 'nearest-src'));
    await addFakePython(src, '3.11.9');
    await pushRuntime(src, 'python', '3.11.9', repo);
    assert.equal((await catalog.python('3.11.7'))?.version, '3.11.9');
    // No python-3.13 anywhere: the nearest local entry (3.11, just pulled) is used.
    assert.equal((await catalog.python('3.13'))?.version, '3.11.9');
    assert.equal(await registry.countRequests('GET', '/v2/runtimes/manifests/python-3.13'), 1);
    assert.equal((await local.list()).length, 2);
  });

  test('a tag the registry lacks is a RuntimeNotInRegistryError that names it', async () => {
    const store = new RuntimeStore(join(root, 'missing'));
    await assert.rejects(pullRuntime(store, repo, 'python', '3.12'), (err: Error) => {
      assert.ok(err instanceof RuntimeNotInRegistryError);
      assert.match(err.message, new RegExp(`has no ${repo.replace(/\./g, '\\.')}:python-3\\.12`));
      return true;
    });
    assert.deepEqual(await store.list(), []);
  });

  test('a corrupted layer is refused by digest; nothing lands in the catalog and the conversion sees the error', async () => {
    const source = new RuntimeStore(join(root, 'corrupt-src'));
    const digest = await addFakePython(source, '3.9.2');
    await pushRuntime(source, 'python', '3.9.2', repo);
    const layer = (await manifestOf(source, digest)).layers[0];
    assert.ok(layer);
    // Same length, other bytes, straight into the registry's storage: the registry serves them as they are.
    const hex = hexOf(layer.digest);
    const data = join(registry.dataDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    const original = await readFile(data);
    await writeFile(data, Buffer.alloc(original.length, 0x5a));

    const store = new RuntimeStore(join(root, 'corrupt'));
    await assert.rejects(pullRuntime(store, repo, 'python', '3.9'), new RegExp(`python-3\\.9: blob ${layer.digest}: content digest sha256:[0-9a-f]{64} does not match ${layer.digest}`));
    assert.deepEqual(await store.list(), []);
    assert.ok(!(await blobNames(store)).includes(hex), 'the corrupt layer is not stored');
    assert.deepEqual((await blobNames(store)).filter((n) => n.endsWith('.tmp')), []);
    await assert.rejects(new OciRuntimeCatalog({ dir: store.dir, registry: repo }).python('3.9'), /does not match/);
    await writeFile(data, original);
  });

  test('a blob missing from the registry is named', async () => {
    const source = new RuntimeStore(join(root, 'gone-src'));
    const digest = await addFakePython(source, '3.8.5');
    await pushRuntime(source, 'python', '3.8', repo);
    const config = (await manifestOf(source, digest)).config;
    const del = await fetch(`${registry.url}/v2/runtimes/blobs/${config.digest}`, { method: 'DELETE' });
    assert.equal(del.status, 202);
    const store = new RuntimeStore(join(root, 'gone'));
    await assert.rejects(pullRuntime(store, repo, 'python', '3.8'), new RegExp(`blob ${config.digest} is missing from the registry`));
    assert.deepEqual(await store.list(), []);
  });

  test('an artifact of another type, or of another runtime, is refused before any blob is fetched', async () => {
    const configBytes = Buffer.from('{}');
    const layerBytes = Buffer.from('not a runtime');
    const blobs = new Map([
      [sha256(configBytes), configBytes],
      [sha256(layerBytes), layerBytes],
    ]);
    const foreign = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: 'application/vnd.example.other.v1',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(configBytes), size: configBytes.length },
      layers: [{ mediaType: OCI_LAYER_GZIP, digest: sha256(layerBytes), size: layerBytes.length }],
      annotations: { 'dev.boxproxy.runtime.name': 'python', 'dev.boxproxy.runtime.version': '3.7.1' },
    };
    await pushArtifact(repo, 'python-3.7', Buffer.from(JSON.stringify(foreign)), async (d) => blobs.get(d.digest) as Buffer);
    const store = new RuntimeStore(join(root, 'foreign'));
    const blobGets = async (): Promise<number> => registry.countRequests('GET', /^\/v2\/runtimes\/blobs\//);
    const before = await blobGets();
    await assert.rejects(
      pullRuntime(store, repo, 'python', '3.7'),
      new RegExp(`python-3\\.7 \\(sha256:[0-9a-f]{64}\\) is not a boxproxy runtime artifact \\(.*artifact type application/vnd\\.example\\.other\\.v1; expected ${RUNTIME_ARTIFACT_TYPE.replace(/\./g, '\\.')}\\)`),
    );
    assert.equal(await blobGets(), before);

    // A runtime artifact under another runtime's tag.
    const source = new RuntimeStore(join(root, 'mislabelled-src'));
    const digest = await addFakePython(source, '3.6.9');
    await pushArtifact(repo, 'ruby-3.6', await source.readBlob(digest), (d) => source.readBlob(d.digest));
    await assert.rejects(pullRuntime(store, repo, 'ruby', '3.6'), /holds python 3\.6\.9, not ruby 3\.6/);
    assert.deepEqual(await store.list(), []);
  });

  test('boxproxy runtimes push publishes a catalog entry; unknown entries fail with a message', async () => {
    const catalog = join(root, 'cli');
    const digest = await addFakePython(new RuntimeStore(catalog), '3.12.1');
    const pushed = await boxproxy(['runtimes', 'push', 'python', '3.12.1', repo, '--catalog', catalog]);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.equal(pushed.stdout, `${repo}:python-3.12\t${digest}\n`);
    const res = await fetch(`${registry.url}/v2/runtimes/manifests/python-3.12`, { method: 'HEAD', headers: { accept: OCI_MANIFEST } });
    assert.equal(res.headers.get('docker-content-digest'), digest);
    const missing = await boxproxy(['runtimes', 'push', 'python', '2.7', repo, '--catalog', catalog]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /has no python 2\.7/);
    await rm(catalog, { recursive: true, force: true });
  });

  test('the proxy passes conversion.runtimes to its workers: an empty catalog is filled from the registry', { skip: skipUnlessTools('skopeo') }, async () => {
    const source = new RuntimeStore(join(root, 'proxy-src'));
    const digest = await addFakePython(source, '3.11.9');
    await pushRuntime(source, 'python', '3.11', repo);
    const image = await pushSpec(registry, 'apps/hello-py', '1', {
      architecture: hostPlatform().architecture,
      layers: [
        {
          entries: [
            dir('usr/'),
            dir('usr/local/'),
            dir('usr/local/bin/'),
            file('usr/local/bin/python3.11', elf({ interpreter: '/lib64/ld-linux-x86-64.so.2' }), 0o755),
            symlink('usr/local/bin/python', 'python3.11'),
            dir('app/'),
            file('app/main.py', 'print("hello")\n'),
          ],
        },
      ],
      config: { Env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'PYTHON_VERSION=3.11.9'], WorkingDir: '/app', Cmd: ['python', 'main.py'] },
    });
    const catalogDir = join(root, 'proxy-catalog');
    const proxy = await startBoxProxy({ registry, conversion: { runtimes: { catalog: catalogDir, registry: repo } } });
    try {
      const status = await convertThrough(proxy, `${registry.host}/apps/hello-py:1`, image.digest);
      assert.equal(status.state, 'done', JSON.stringify(status));
      assert.equal(status.strategy, 'python');
      // A worker ignoring conversion.runtimes would use the default catalog and leave this directory empty.
      assert.deepEqual((await new RuntimeStore(catalogDir).list()).map((e) => e.descriptor.digest), [digest]);
    } finally {
      await proxy.stop();
      await removeTempDir(image.layout);
    }
  });
});
