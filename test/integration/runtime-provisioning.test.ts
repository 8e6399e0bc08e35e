// A proxy whose runtime catalog is empty, as on a new machine: the first Python image makes it build CPython for
// WASI itself (scripts/runtimes/python/build.sh, through the build cache the test setup warmed), the conversion
// waits for it in the status API, the Box reference answers "converting" meanwhile, and the Box arrives and runs.
// The build script is wrapped so that it starts only when the test says: that is how the wait is observed.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { createLogger } from '../../src/ops/log.js';
import { buildScriptPath } from '../../src/runtimes/build.js';
import { RuntimeProvisioner } from '../../src/runtimes/provision.js';
import { RuntimeStore } from '../../src/runtimes/store.js';
import { dir, elf, file, symlink } from '../convert/helpers.js';
import { assertOciError, rawRequest } from '../helpers/http.js';
import { hostPlatform, skopeo } from '../helpers/images.js';
import { makeTempDir, removeTempDir, skipUnlessTools, waitUntil } from '../helpers/proc.js';
import type { TestProxy } from '../helpers/proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { conversionStatus, pushSpec, runBoxLayout, startBoxProxy, waitForConversion, type ConversionStatus, type PushedImage } from './boxes-helpers.js';

const APP = 'print("hello from a provisioned runtime")\n';

describe('a runtime the catalog lacks is built by the proxy', { skip: skipUnlessTools('docker-registry', 'skopeo') }, () => {
  let registry: TestRegistry;
  let work: string;
  let image: PushedImage;

  before(async () => {
    registry = await startRegistry();
    work = await makeTempDir('provisioning');
    image = await pushSpec(registry, 'apps/hello-py', '1', {
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
            file('app/main.py', APP),
          ],
        },
      ],
      config: { Env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'PYTHON_VERSION=3.11.9'], WorkingDir: '/app', Cmd: ['python', 'main.py'] },
    });
  });
  after(async () => {
    await registry?.stop();
    if (image) await removeTempDir(image.layout);
    if (work) await removeTempDir(work);
  });

  test('the conversion waits for the build, the Box reference answers converting, then the Box runs', async () => {
    const catalogDir = join(work, 'catalog');
    const release = join(work, 'go');
    const wrapper = join(work, 'build.sh');
    await writeFile(
      wrapper,
      `#!/usr/bin/env bash\necho "build.sh: waiting for the test" >&2\nwhile [[ ! -e ${release} ]]; do sleep 0.1; done\nexec bash ${await buildScriptPath('python')} "$@"\n`,
      { mode: 0o755 },
    );
    const provisioner = new RuntimeProvisioner({ build: 'auto', catalogDir, script: wrapper, logger: createLogger('silent') });
    const proxy: TestProxy = await startBoxProxy({ registry, conversion: { boxWaitMs: 200, runtimes: { catalog: catalogDir } }, runtimeProvisioner: provisioner });
    try {
      const boxRef = `/v2/wasm/${registry.host}/apps/hello-py/manifests/1`;
      const early = await rawRequest(proxy.url, 'GET', boxRef, { accept: OCI_MANIFEST });
      assert.match(assertOciError(early, 404, 'MANIFEST_UNKNOWN', 'Box reference while converting').errors[0]?.message ?? '', /converting/);

      let waiting: ConversionStatus | undefined;
      await waitUntil('the conversion to wait for the runtime', async () => {
        waiting = await conversionStatus(proxy.url, image.digest);
        return waiting?.state === 'waiting-runtime' && waiting.waiting?.detail === 'build.sh: waiting for the test';
      });
      assert.deepEqual(waiting?.waiting?.runtime, { name: 'python', version: '3.11.9' });
      assert.equal(waiting?.waiting?.action, 'building');
      const listed = (await (await fetch(`${proxy.url}/boxproxy/v1/conversions`)).json()) as { conversions: ConversionStatus[] };
      assert.deepEqual(listed.conversions.find((c) => c.source === image.digest)?.waiting, waiting?.waiting, 'the list shows the same progress');
      const during = await rawRequest(proxy.url, 'GET', boxRef, { accept: OCI_MANIFEST });
      assert.match(assertOciError(during, 404, 'MANIFEST_UNKNOWN', 'Box reference while building').errors[0]?.message ?? '', /converting/);

      await writeFile(release, '');
      const done = await waitForConversion(proxy, image.digest, 600_000);
      assert.equal(done.state, 'done', JSON.stringify(done));
      assert.equal(done.strategy, 'python');
      assert.deepEqual((await new RuntimeStore(catalogDir).list()).map((e) => e.name), ['python']);
      assert.match(await proxy.log(), /conversion waits for a runtime/);

      const layout = join(work, 'box');
      await skopeo(['copy', '--quiet', '--src-tls-verify=false', '--src-no-creds', `docker://${proxy.host}/wasm/apps/hello-py:1`, `oci:${layout}:1`]);
      const ran = await runBoxLayout(layout, { cacheDir: join(work, 'run-cache') });
      assert.equal(ran.stdout, 'hello from a provisioned runtime\n', ran.stderr);
      assert.equal(ran.exitCode, 0);
    } finally {
      await proxy.stop();
    }
  });

  test('with conversion.runtimes.build: never the conversion fails, naming the command that builds the runtime', async () => {
    const catalogDir = join(work, 'never-catalog');
    const proxy = await startBoxProxy({ registry, conversion: { runtimes: { catalog: catalogDir, build: 'never' } } });
    try {
      const res = await fetch(`${proxy.url}/boxproxy/v1/conversions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ reference: `${registry.host}/apps/hello-py:1` }),
      });
      assert.ok(res.status === 200 || res.status === 202, await res.text());
      const failed = await waitForConversion(proxy, image.digest);
      assert.equal(failed.state, 'failed');
      assert.match(failed.reason ?? '', new RegExp(`CPython 3\\.11 for WASI is not in the runtime catalog .* build it: .*runtimes build python --catalog ${catalogDir}`));
      assert.deepEqual(await new RuntimeStore(catalogDir).list(), []);
    } finally {
      await proxy.stop();
    }
  });
});
