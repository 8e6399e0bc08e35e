// RegistrySource against Debian's real docker-registry, the image pushed there with skopeo.
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { convertImage } from '../../src/convert/pipeline.js';
import { RegistrySource, type UpstreamRequester } from '../../src/image/registry.js';
import { ImageError } from '../../src/image/errors.js';
import { file, noRuntimes, tempDir, wasmModule, writeLayout } from '../convert/helpers.js';

const REGISTRY = '/usr/bin/docker-registry';
const SKOPEO = '/usr/bin/skopeo';
const missing = [REGISTRY, SKOPEO].filter((p) => !existsSync(p));
if (missing.length > 0 && process.env.CI) throw new Error(`missing test dependencies: ${missing.join(', ')}`);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

describe('RegistrySource', { skip: missing.length > 0 ? `missing ${missing.join(', ')}` : false }, () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let registry: ChildProcess | undefined;
  let base: string;
  let requester: UpstreamRequester;

  before(async () => {
    ({ path: dir, cleanup } = await tempDir());
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const config = join(dir, 'registry.yml');
    await writeFile(config, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'storage')}\nhttp:\n  addr: 127.0.0.1:${port}\n`);
    registry = spawn(REGISTRY, ['serve', config], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      try {
        const res = await request(`${base}/v2/`);
        await res.body.dump();
        if (res.statusCode === 200) break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await writeLayout(join(dir, 'layout'), {
      config: { Cmd: ['/app/hello.wasm'], Env: ['GREETING=hi'] },
      layers: [{ entries: [file('app/hello.wasm', wasmModule(), 0o755), file('app/data.txt', 'from the registry')] }],
    }, { tag: 'v1' });
    await promisify(execFile)(SKOPEO, ['copy', '--dest-tls-verify=false', `oci:${join(dir, 'layout')}:v1`, `docker://127.0.0.1:${port}/demo/app:v1`]);
    requester = async (req) => {
      const res = await request(`${base}${req.path}`, { method: req.method, headers: req.headers ?? {} });
      return { status: res.statusCode, headers: res.headers, body: res.body as unknown as Readable };
    };
  });

  after(async () => {
    if (registry && registry.exitCode === null) {
      const exited = new Promise((r) => registry?.once('exit', r));
      registry.kill('SIGTERM');
      await exited;
    }
    await cleanup();
  });

  test('converts an image straight from the registry', async () => {
    const source = new RegistrySource(requester, 'demo/app', `127.0.0.1/demo/app`);
    const r = await convertImage(source, 'v1', { workDir: join(dir, 'work'), runtimes: noRuntimes });
    assert.equal(r.kind, 'box', r.kind === 'unconvertible' ? r.reason : '');
    if (r.kind !== 'box') return;
    const manifest = JSON.parse(r.box.manifest.bytes.toString()) as { annotations: Record<string, string> };
    assert.equal(manifest.annotations['org.opencontainers.image.base.name'], '127.0.0.1/demo/app:v1');
    // By digest gives the same Box.
    const byDigest = await source.getManifest(r.report.source.digest ?? '');
    assert.equal(byDigest.digest, r.report.source.digest);
  });

  test('unknown tags and blobs are typed errors', async () => {
    const source = new RegistrySource(requester, 'demo/app');
    await assert.rejects(source.getManifest('nope'), (e: unknown) => e instanceof ImageError && e.code === 'MANIFEST_UNKNOWN');
    await assert.rejects(source.openBlob('sha256:' + '0'.repeat(64)), (e: unknown) => e instanceof ImageError && e.code === 'BLOB_UNKNOWN');
    await assert.rejects(source.openBlob('../../etc/passwd'), (e: unknown) => e instanceof ImageError);
  });
});
