// Through a real registry and the real CLI: push fixture images with skopeo to Debian's docker-registry on
// loopback, `boxproxy convert 127.0.0.1:PORT/app:1 -o dir`, then `boxproxy run` the Box (from the layout and
// from the registry after pushing it there too).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildProgram } from '../../src/cli/program.js';
import { assertBoxRunsAlikeInEngines } from '../helpers/engines/index.js';
import { skopeo } from '../helpers/images.js';
import { makeTempDir, removeTempDir, run, skipUnlessTools, type RunResult } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { nativeServerImage, rubyAppImage, wasiAppImage, writeLayout } from '../fixtures/images.js';
import type { ImageSpec } from '../convert/helpers.js';

const REPO_ROOT = new URL('../../', import.meta.url).pathname;

/** src/cli/main.ts once it has the convert and run commands; until then the same program via cli-entry.ts. */
function cliEntry(): string {
  const names = buildProgram().commands.map((c) => c.name());
  return names.includes('convert') && names.includes('run') ? join(REPO_ROOT, 'src/cli/main.ts') : join(REPO_ROOT, 'test/convert-e2e/cli-entry.ts');
}

async function boxproxy(...args: string[]): Promise<RunResult> {
  return run(process.execPath, ['--import', 'tsx', cliEntry(), ...args], { allowFailure: true, env: { ...process.env, NO_COLOR: '1' } });
}

describe('boxproxy convert/run with a registry', { skip: skipUnlessTools('docker-registry', 'skopeo') }, () => {
  let registry: TestRegistry;
  let work: string;
  before(async () => {
    registry = await startRegistry();
    work = await makeTempDir('cli-e2e');
  });
  after(async () => {
    await registry?.stop();
    if (work) await removeTempDir(work);
  });

  async function push(name: string, spec: ImageSpec): Promise<string> {
    const dir = join(work, `${name}-image`);
    await writeLayout(dir, spec, { tag: '1' });
    const ref = `${registry.host}/${name}:1`;
    await skopeo(['copy', '--preserve-digests', '--quiet', '--dest-tls-verify=false', '--dest-no-creds', `oci:${dir}:1`, `docker://${ref}`]);
    return ref;
  }

  test('WASI app: convert from the registry, run from the layout and from the registry', async () => {
    const ref = await push('app', wasiAppImage());
    const out = join(work, 'app-box');
    const converted = await boxproxy('convert', ref, '-o', out);
    assert.equal(converted.code, 0, converted.stderr);
    const report = JSON.parse(converted.stdout) as { chosen: string; box: { digest: string }; source: { name: string } };
    assert.equal(report.chosen, 'wasi-module');
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations: Record<string, string> }> };
    assert.equal(index.manifests[0]?.digest, report.box.digest);
    assert.equal(index.manifests[0]?.annotations['org.opencontainers.image.ref.name'], '1');

    const cache = join(work, 'cache');
    const fromLayout = await boxproxy('run', '--cache', cache, out, '--', 'cat:message.txt', 'exit:3');
    assert.equal(fromLayout.code, 3, fromLayout.stderr);
    assert.match(fromLayout.stdout, /^argv\[1\]=cat:message.txt$/m);
    assert.match(fromLayout.stdout, /^message.txt: relative read works$/m);
    assert.match(fromLayout.stdout, /^name: Box$/m);
    assert.equal(fromLayout.stderr, '');
    await assertBoxRunsAlikeInEngines(out, { args: ['cat:message.txt', 'exit:3'] }, { stdout: fromLayout.stdout, exitCode: fromLayout.code });

    // The Box is an ordinary image to a registry: push it, run it by reference.
    const boxRef = `${registry.host}/app-box:1`;
    await skopeo(['copy', '--preserve-digests', '--quiet', '--dest-tls-verify=false', '--dest-no-creds', `oci:${out}:1`, `docker://${boxRef}`]);
    const fromRegistry = await boxproxy('run', '--cache', cache, '--env', 'GREETING_NAME=registry', boxRef);
    assert.equal(fromRegistry.code, 7, fromRegistry.stderr);
    assert.match(fromRegistry.stdout, /^name: registry$/m);
    await assertBoxRunsAlikeInEngines(out, { env: ['GREETING_NAME=registry'] }, { stdout: fromRegistry.stdout, exitCode: fromRegistry.code });
  });

  test('Ruby app through the CLI prints its real output and exit status', async () => {
    const ref = await push('ruby-app', rubyAppImage());
    const out = join(work, 'ruby-box');
    const converted = await boxproxy('convert', ref, '-o', out);
    assert.equal(converted.code, 0, converted.stderr);
    const r = await boxproxy('run', '--cache', join(work, 'cache'), out, '--', '/app/main.rb', 'exit:9');
    assert.equal(r.stdout.split('\n')[0], 'Hello, Rubyist!');
    assert.match(r.stdout, /^argv \["exit:9"\]$/m);
    assert.equal(r.code, 9, r.stderr);
    await assertBoxRunsAlikeInEngines(out, { args: ['/app/main.rb', 'exit:9'] }, { stdout: r.stdout, exitCode: r.code });
  });

  test('a native image is refused with exit status 3 and the reason', async () => {
    const ref = await push('native', nativeServerImage());
    const r = await boxproxy('convert', ref, '-o', join(work, 'native-box'));
    assert.equal(r.code, 3);
    assert.match(r.stderr, /\/usr\/sbin\/nginx is an x86-64 ELF executable/);
    const report = JSON.parse(r.stdout) as { unconvertible: string };
    assert.match(report.unconvertible, /no Wasm build/);
  });

  test('errors: unknown repository, running a non-Box', async () => {
    const missing = await boxproxy('convert', `${registry.host}/nope:1`, '-o', join(work, 'nope'));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /404|MANIFEST_UNKNOWN|nope/);
    const ref = await push('not-a-box', wasiAppImage());
    const r = await boxproxy('run', '--cache', join(work, 'cache'), ref);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /not a Box/);
  });
});
