// The proxy's runtime provisioner with build scripts that stand in for scripts/runtimes/python/build.sh: they
// print log lines, wait for the test's go-ahead, and produce a (tiny) runtime, or fail. What is checked is the
// plumbing around a build: one build for concurrent callers, progress while it runs, the catalog entry it adds,
// and errors that carry the script's last lines and the command to run.
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { silentLogger } from '../../src/ops/log.js';
import { RuntimeProvisioner, RuntimeUnavailableError } from '../../src/runtimes/provision.js';
import { RuntimeStore } from '../../src/runtimes/store.js';
import { makeTempDir, removeTempDir, waitUntil } from '../helpers/proc.js';

/** A build script: logs, waits until $dir/go exists, counts its runs, writes a runtime dir, prints its path. */
function fakeBuild(dir: string): string {
  return `#!/usr/bin/env bash
set -euo pipefail
echo "build.sh: building CPython 3.11.9 (fake)" >&2
echo "checking for clang... yes" >&2
while [[ ! -e "${dir}/go" ]]; do sleep 0.05; done
echo run >> "${dir}/runs"
out="${dir}/out"
mkdir -p "$out/lib/python3.11"
printf '\\0asm\\1\\0\\0\\0' > "$out/python.wasm"
echo '# stdlib' > "$out/lib/python3.11/os.py"
cat > "$out/manifest.json" <<'EOF'
{"name":"python","version":"3.11.9","target":"wasm32-wasi","wasi":"preview1","cacheKey":"fake0123456789ab","sourceDateEpoch":0,
 "files":{"interpreter":"python.wasm","stdlib":"lib/python3.11","prefix":"/usr/local"},"interpreter":{"sha256":"","size":8},
 "inputs":{"script":{"path":"fake","sha256":""},"sources":[],"toolchain":{"clang":"","packages":{}},"flags":{}}}
EOF
echo "build.sh: done: $out" >&2
echo "$out"
`;
}

const FAILING_BUILD = `#!/usr/bin/env bash
echo "build.sh: installing clang lld llvm" >&2
echo "E: Unable to locate package clang-19" >&2
echo "build.sh: ERROR: missing packages clang-19 and not root to install them" >&2
exit 1
`;

describe('runtime provisioner', () => {
  let dir: string;
  before(async () => {
    dir = await makeTempDir('provision-');
  });
  after(() => removeTempDir(dir));

  const provisioner = (name: string, opts: Partial<ConstructorParameters<typeof RuntimeProvisioner>[0]> = {}) =>
    new RuntimeProvisioner({ build: 'auto', catalogDir: join(dir, name, 'catalog'), cacheDir: join(dir, name, 'cache'), logger: silentLogger(), ...opts });

  test('concurrent conversions share one build; its progress shows while it runs; the catalog holds it after', async () => {
    const work = join(dir, 'ok');
    const script = join(dir, 'ok-build.sh');
    await mkdir(work, { recursive: true });
    await writeFile(script, fakeBuild(work), { mode: 0o755 });
    const p = provisioner('ok', { script });
    const need = { name: 'python', version: '3.11.2' };
    const first = p.obtain(need);
    const second = p.obtain({ name: 'python', version: '3.11' });
    await waitUntil('the build reports its latest line', async () => p.status(need)?.detail === 'checking for clang... yes', { timeoutMs: 10_000 });
    const progress = p.status(need);
    assert.equal(progress?.runtime, 'python 3.11');
    assert.equal(progress?.action, 'building');
    await writeFile(join(work, 'go'), '');
    await Promise.all([first, second]);
    assert.equal(await readFile(join(work, 'runs'), 'utf8'), 'run\n', 'one build for both');
    assert.equal(p.status(need), undefined, 'no progress once done');
    const entries = await new RuntimeStore(join(dir, 'ok', 'catalog')).list();
    assert.deepEqual(entries.map((e) => [e.name, e.version]), [['python', '3.11.9']]);
  });

  test('a failed build names its last lines and the command that builds it', async () => {
    const script = join(dir, 'fail-build.sh');
    await writeFile(script, FAILING_BUILD, { mode: 0o755 });
    const p = provisioner('fail', { script });
    await assert.rejects(p.obtain({ name: 'python', version: '3.11' }), (err: Error) => {
      assert.ok(err instanceof RuntimeUnavailableError);
      assert.match(err.message, /CPython 3\.11 for WASI is not in the runtime catalog and building it here failed/);
      assert.match(err.message, /E: Unable to locate package clang-19\nbuild\.sh: ERROR: missing packages clang-19 and not root to install them/);
      assert.match(err.message, new RegExp(`runtimes build python --catalog ${join(dir, 'fail', 'catalog').replace(/[.]/g, '\\.')}$`));
      return true;
    });
    assert.equal(p.status({ name: 'python', version: '3.11' }), undefined);
  });

  test('nothing is built with build: never, with a runtime registry configured, or for a runtime no script makes', async () => {
    const never = provisioner('never', { build: 'never', script: join(dir, 'does-not-exist.sh') });
    await assert.rejects(never.obtain({ name: 'python', version: '3.11' }), /conversion\.runtimes\.build is never; build it: .*runtimes build python --catalog /);
    const registry = provisioner('registry', { registry: '127.0.0.1:5999/runtimes', script: join(dir, 'does-not-exist.sh') });
    await assert.rejects(
      registry.obtain({ name: 'python', version: '3.12' }),
      /runtime registry 127\.0\.0\.1:5999\/runtimes has no python-3\.11 .*runtimes push python 3\.11 127\.0\.0\.1:5999\/runtimes/,
    );
    await assert.rejects(provisioner('lua').obtain({ name: 'lua', version: '5.4' }), /no runtime for lua 5\.4 is in the catalog and none can be built here \(buildable: python 3\.11, quickjs 2025\.04\)/);
  });
});
