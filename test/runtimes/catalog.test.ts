import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { OCI_LAYER_GZIP } from '../../src/oci/mediatypes.js';
import type { ImageManifest } from '../../src/oci/types.js';
import { hexOf, sha256 } from '../../src/oci/digest.js';
import { checkWasiCommand } from '../../src/convert/wasm-imports.js';
import { buildRuntime } from '../../src/runtimes/build.js';
import { ANNOTATION_RUNTIME_NAME, ANNOTATION_RUNTIME_VERSION, RUNTIME_ARTIFACT_TYPE } from '../../src/runtimes/artifact.js';
import { OciRuntimeCatalog } from '../../src/runtimes/catalog.js';
import { importNpmRuby } from '../../src/runtimes/npm-ruby.js';
import { packageBuild } from '../../src/runtimes/package.js';
import { RuntimeStore } from '../../src/runtimes/store.js';
import { pythonBuild, runPlainWasi } from './helpers.js';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'boxproxy-runtimes-'));
});
after(async () => rm(root, { recursive: true, force: true }));

describe('python runtime build (scripts/runtimes/python/build.sh)', () => {
  test('manifest.json records the version and every build input', async () => {
    const { dir, manifest } = await pythonBuild();
    const text = await readFile(join(dir, 'manifest.json'), 'utf8');
    assert.deepEqual(JSON.parse(text), manifest);
    assert.equal(manifest.name, 'python');
    assert.match(manifest.version, /^3\.11\.\d+$/);
    assert.equal(manifest.target, 'wasm32-wasi');
    const [py, zlib] = manifest.inputs.sources;
    assert.equal(py?.package, 'python3.11');
    assert.match(py?.version ?? '', /^3\.11\.\d+-/);
    assert.equal(zlib?.package, 'zlib');
    for (const source of manifest.inputs.sources) {
      assert.ok(source.files.some((f) => /\.orig\.tar\./.test(f.name)), `${source.package} lists its orig tarball`);
      for (const f of source.files) assert.match(f.sha256, /^[0-9a-f]{64}$/);
    }
    assert.match(manifest.inputs.toolchain.clang, /clang version 14/);
    assert.ok(manifest.inputs.toolchain.packages['wasi-libc']);
    assert.ok(manifest.inputs.flags.CFLAGS?.includes('-D_WASI_EMULATED_SIGNAL'));
    assert.ok(manifest.inputs.flags.CFLAGS?.some((f) => f.startsWith('-ffile-prefix-map=')));
    assert.match(manifest.inputs.script.sha256, /^[0-9a-f]{64}$/);
    // No temporary build path leaks into what ships (determinism).
    assert.doesNotMatch(text, /\.build-python-/);
    const sysconfig = (await readdir(join(dir, 'lib/python3.11/lib-dynload'))).find((n) => n.startsWith('_sysconfigdata'));
    assert.ok(sysconfig, 'sysconfigdata is shipped in lib-dynload');
    assert.doesNotMatch(await readFile(join(dir, 'lib/python3.11/lib-dynload', sysconfig), 'utf8'), /\.build-python-/);
  });

  test('output: a stripped WASI module and a pruned stdlib with bytecode', async () => {
    const { dir, manifest } = await pythonBuild();
    const wasm = await readFile(join(dir, 'python.wasm'));
    assert.deepEqual([...wasm.subarray(0, 8)], [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
    assert.equal(wasm.length, manifest.interpreter.size);
    assert.equal(sha256(wasm), 'sha256:' + manifest.interpreter.sha256);
    assert.ok(wasm.length < 12 * 1024 * 1024, `stripped (${wasm.length} bytes)`);
    // A plain WASI preview1 command: any runwasi-style runtime can start it.
    const wasi = checkWasiCommand(wasm);
    assert.ok(wasi.ok, wasi.ok ? '' : wasi.reason);
    const lib = join(dir, 'lib/python3.11');
    const names = await readdir(lib);
    for (const present of ['os.py', 'json', 'gzip.py', 'zipfile.py', 'encodings']) assert.ok(names.includes(present), present);
    for (const absent of ['test', 'idlelib', 'tkinter', 'turtledemo', 'ensurepip', 'lib2to3']) assert.ok(!names.includes(absent), absent);
    assert.ok((await readdir(join(lib, '__pycache__'))).some((n) => n.startsWith('os.cpython-311')));
    assert.ok(!(await readdir(join(lib, 'unittest'))).includes('test'));
    assert.equal((await stat(join(lib, 'os.py'))).mtimeMs, manifest.sourceDateEpoch * 1000);
  });

  test('a second build call is served from the cache', async () => {
    const first = await pythonBuild();
    const again = await buildRuntime('python');
    assert.equal(again.dir, first.dir);
    assert.equal(again.manifest.cacheKey, first.manifest.cacheKey);
  });

  test('python.wasm runs with zlib, gzip and compressed zip imports under plain node:wasi', async () => {
    const { dir } = await pythonBuild();
    const work = await mkdtemp(join(root, 'zip-'));
    const code = [
      'import zlib, gzip, zipfile, sys, json',
      "data = b'boxproxy ' * 100",
      'assert zlib.decompress(zlib.compress(data)) == data',
      "with zipfile.ZipFile('/work/mods.zip', 'w', zipfile.ZIP_DEFLATED) as z: z.writestr('zipped_mod.py', 'VALUE = 42')",
      "sys.path.insert(0, '/work/mods.zip')",
      'import zipped_mod',
      "print(json.dumps({'gzip': len(gzip.compress(data)) < len(data), 'zip': zipped_mod.VALUE, 'version': sys.version.split()[0], 'platform': sys.platform}))",
    ].join('\n');
    const run = await runPlainWasi(join(dir, 'python.wasm'), ['python', '-c', code], ['PYTHONHOME=/usr/local'], {
      '/usr/local/lib/python3.11': join(dir, 'lib/python3.11'),
      '/work': work,
    });
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout) as { gzip: boolean; zip: number; version: string; platform: string };
    assert.deepEqual({ gzip: out.gzip, zip: out.zip, platform: out.platform }, { gzip: true, zip: 42, platform: 'wasi' });
    assert.match(out.version, /^3\.11\./);
  });
});

describe('runtime catalog (OCI layout of runtime artifacts)', () => {
  test('packages a build as an OCI artifact, byte-identically', async () => {
    const { dir, manifest } = await pythonBuild();
    const a = new RuntimeStore(join(root, 'catalog-a'));
    const b = new RuntimeStore(join(root, 'catalog-b'));
    const da = await packageBuild(a, dir, manifest);
    const db = await packageBuild(b, dir, manifest);
    assert.equal(da.digest, db.digest);
    assert.equal(da.artifactType, RUNTIME_ARTIFACT_TYPE);
    const m = JSON.parse(await readFile(join(a.dir, 'blobs/sha256', hexOf(da.digest)), 'utf8')) as ImageManifest;
    assert.equal(m.artifactType, RUNTIME_ARTIFACT_TYPE);
    assert.equal(m.annotations?.[ANNOTATION_RUNTIME_NAME], 'python');
    assert.equal(m.annotations?.[ANNOTATION_RUNTIME_VERSION], manifest.version);
    assert.equal(m.layers.length, 1);
    assert.equal(m.layers[0]?.mediaType, OCI_LAYER_GZIP);
    const config = JSON.parse(await readFile(join(a.dir, 'blobs/sha256', hexOf(m.config.digest)), 'utf8')) as { cacheKey: string };
    assert.equal(config.cacheKey, manifest.cacheKey);
    const index = JSON.parse(await readFile(join(a.dir, 'index.json'), 'utf8')) as { manifests: unknown[] };
    assert.equal(index.manifests.length, 1);
  });

  test('the store finds the nearest major.minor and unpacks it once', async () => {
    const { dir, manifest } = await pythonBuild();
    const catalogDir = join(root, 'catalog-find');
    await packageBuild(new RuntimeStore(catalogDir), dir, manifest);
    for (const want of ['3.11.9', '3.12', '3.9.18', '']) {
      const found = await new RuntimeStore(catalogDir).find('python', want);
      assert.equal(found?.version, manifest.version, want);
    }
    const found = await new RuntimeStore(catalogDir).find('python', '3.11');
    assert.ok(found);
    assert.deepEqual(await readFile(join(found.dir, 'python.wasm')), await readFile(join(dir, 'python.wasm')));
    assert.equal(await new RuntimeStore(catalogDir).find('lua', '5.4'), undefined);
    const catalog = new OciRuntimeCatalog({ dir: catalogDir });
    const py = await catalog.python('3.11.4');
    assert.ok(py);
    assert.equal(py.stdlibDir, join(found.dir, 'lib/python3.11'));
    assert.ok((await stat(join(py.stdlibDir, 'os.py'))).isFile());
  });

  test('ruby.wasm goes through the same catalog: npm packages, or imported as artifacts', async () => {
    const catalogDir = join(root, 'catalog-ruby');
    const catalog = new OciRuntimeCatalog({ dir: catalogDir });
    const fromNpm = await catalog.ruby('3.4.1');
    assert.ok(fromNpm, '@ruby/3.4-wasm-wasi is a dependency');
    assert.equal(fromNpm.version, '3.4');
    const imported = await importNpmRuby(catalog.store, undefined, ['3.4']);
    assert.equal(imported.length, 1);
    const fromCatalog = await catalog.ruby('3.4');
    assert.ok(fromCatalog);
    assert.match(fromCatalog.package ?? '', /^ruby@3\.4 sha256:/);
    assert.deepEqual(await readFile(fromCatalog.wasmPath), await readFile(fromNpm.wasmPath));
  });
});
