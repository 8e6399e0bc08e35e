// The corpus builder itself: recipes as data, overlayfs uppers into OCI layers with docker's whiteouts, and the
// built images' layouts.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { list } from 'tar';
import { corpusImage, corpusSkip } from './corpus.js';
import { parseStanzas, staleVersions } from './debian.js';
import { exec } from './exec.js';
import { layerFromUpper } from './layers.js';
import { layersListing } from './verify.js';
import { dockerArgv, dockerEnv, runNative } from './native.js';
import { canonicalJson, imageEnv, recipeProblem, type Recipe } from './recipe.js';
import { RECIPES } from './recipes/index.js';

const skip = corpusSkip();

async function tarEntries(file: string): Promise<string[]> {
  const out: string[] = [];
  await list({ file, onReadEntry: (e) => out.push(e.path) });
  return out;
}

describe('corpus recipes', () => {
  const base: Recipe = { name: 'x', description: '', suite: 'bookworm', packages: ['python3'], config: {} };

  test('every recipe is buildable as written, names are unique', () => {
    for (const r of RECIPES) assert.equal(recipeProblem(r), undefined, r.name);
    assert.equal(new Set(RECIPES.map((r) => r.name)).size, RECIPES.length);
  });

  test('bad recipes are refused with the reason', () => {
    assert.match(recipeProblem({ ...base, name: 'Bad Name' }) ?? '', /lower-case/);
    assert.match(recipeProblem({ ...base, files: { 'app/x.py': '' } }) ?? '', /must be absolute/);
    assert.match(recipeProblem({ ...base, npm: { dir: '/app', packages: ['left-pad@^1.3.0'] } }) ?? '', /exact version/);
    assert.equal(recipeProblem({ ...base, npm: { dir: '/app', packages: ['left-pad@1.3.0', '@scope/pkg@2.0.0-rc.1'] } }), undefined);
  });

  test('canonical JSON and the image env', () => {
    assert.equal(canonicalJson({ b: 1, a: [{ d: 2, c: undefined }] }), '{"a":[{"d":2}],"b":1}');
    assert.deepEqual(imageEnv({ ...base, config: { Env: ['LANG=C.UTF-8', 'PATH=/opt/bin:/usr/bin'] } }), ['PATH=/opt/bin:/usr/bin', 'LANG=C.UTF-8']);
  });

  test('a layer is stale when Debian has another version of what it installed', () => {
    const index = parseStanzas('Package: python3\nVersion: 3.11.2-1+b1\n\nPackage: libc6\nVersion: 2.36-9+deb12u14\n');
    assert.deepEqual(staleVersions({ python3: '3.11.2-1+b1' }, index), []);
    assert.deepEqual(staleVersions({ libc6: '2.36-9+deb12u13', gone: '1' }, index), ['libc6 2.36-9+deb12u13 -> 2.36-9+deb12u14', 'gone 1 -> (gone)']);
    const status = parseStanzas('Package: a\nStatus: install ok installed\nVersion: 1\n\nPackage: b\nStatus: deinstall ok config-files\nVersion: 2\n', true);
    assert.deepEqual([...status], [['a', '1']]);
  });
});

describe('corpus layers', { skip }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'boxproxy-layers-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  test("an overlayfs upper becomes a layer with docker's whiteouts, and the layers reproduce the tree", async () => {
    const lower = join(dir, 'lower');
    for (const d of ['etc', 'opt/app/old', 'var/log']) await mkdir(join(lower, d), { recursive: true });
    await writeFile(join(lower, 'etc/keep'), 'keep');
    await writeFile(join(lower, 'etc/gone'), 'gone');
    await writeFile(join(lower, 'opt/app/old/x'), 'x');
    const [upper, work, merged] = ['upper', 'work', 'merged'].map((d) => join(dir, d)) as [string, string, string];
    for (const d of [upper, work, merged]) await mkdir(d, { recursive: true });
    // What a RUN step does: delete a file, replace a directory, add a file; overlayfs records it in the upper.
    const script = 'mount --make-rprivate / && mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$4" && rm "$4/etc/gone" && rm -r "$4/opt/app" && mkdir -p "$4/opt/app" && echo new > "$4/opt/app/new" && echo log > "$4/var/log/run"';
    await exec('unshare', ['--mount', 'sh', '-c', script, 'sh', lower, upper, work, merged]);
    const baseBlob = join(dir, 'base.tar.gz');
    const runBlob = join(dir, 'run.tar.gz');
    await layerFromUpper(lower, baseBlob, join(dir, 'scratch'));
    const layer = await layerFromUpper(upper, runBlob, join(dir, 'scratch'));
    assert.match(layer.digest, /^sha256:[0-9a-f]{64}$/);
    const entries = await tarEntries(runBlob);
    assert.ok(entries.includes('etc/.wh.gone'), entries.join(' '));
    assert.ok(entries.includes('opt/app/.wh..wh..opq'), entries.join(' '));
    assert.ok(entries.includes('opt/app/new'));
    assert.ok(!entries.some((e) => e.startsWith('./') || e.includes('etc/keep')));
    const paths = (await layersListing([baseBlob, runBlob])).map((l) => l.split('\t')[0]);
    assert.deepEqual(paths, ['etc', 'etc/keep', 'opt', 'opt/app', 'opt/app/new', 'var', 'var/log', 'var/log/run']);
  });

  test('a built corpus image: an OCI layout tagged with the recipe name, one layer per step, whiteouts from the purge', async () => {
    const image = await corpusImage('python-official');
    const index = JSON.parse(await readFile(join(image.layout, 'index.json'), 'utf8')) as { manifests: Array<{ annotations: Record<string, string> }> };
    assert.equal(index.manifests[0]?.annotations['org.opencontainers.image.ref.name'], 'python-official');
    assert.deepEqual(
      image.config.history?.map((h) => String(h.created_by).split(' ')[0]),
      ['debootstrap', 'RUN', 'COPY', 'RUN'],
    );
    const manifest = JSON.parse(
      await readFile(join(image.layout, 'blobs', 'sha256', image.record.manifestDigest.slice(7)), 'utf8'),
    ) as { layers: Array<{ digest: string }> };
    const entries = await tarEntries(join(image.layout, 'blobs', 'sha256', (manifest.layers[3]?.digest ?? '').slice(7)));
    assert.ok(entries.includes('usr/bin/.wh.python3.11'), 'the purge of python3.11 is a whiteout');
    assert.ok(entries.includes('usr/local/bin/python3.11'));
  });

  test('the native run: the image\'s env, working dir and argv, no network, and the cached image stays as it was', async () => {
    const image = await corpusImage('python-debian');
    assert.deepEqual(dockerArgv(image), ['python3', '/app/x.py']);
    assert.deepEqual(dockerArgv(image, ['python3', '-V']), ['python3', '-V']);
    assert.ok(dockerEnv(image).includes('HOME=/root'));
    const program = [
      'import os, socket',
      // LC_CTYPE is CPython's own (PEP 538 coerces the C locale), not the environment's.
      'print(os.getcwd(), sorted(k for k in os.environ if k != "LC_CTYPE"))',
      'open("/app/written-by-the-oracle", "w").write("x")',
      'try:',
      '    socket.create_connection(("deb.debian.org", 80), timeout=5)',
      '    print("network")',
      'except OSError as e:',
      '    print("no network:", type(e).__name__)',
    ].join('\n');
    const r = await runNative(image, { args: ['python3', '-c', program], env: ['EXTRA=1'] });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, "/app ['EXTRA', 'HOME', 'PATH']\nno network: gaierror\n");
    for (const lower of image.lowers) await assert.rejects(readFile(join(lower, 'app/written-by-the-oracle')));
  });
});

