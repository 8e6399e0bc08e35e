import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LABEL_DIRS, LABEL_RUNNER, RUNNER_RUBY } from '../../src/box/format.js';
import { BoxError, loadBox, type UnpackedBox } from '../../src/box/layout.js';
import { parseDirOption, parseRubyArgs, planRun, runPlanIsolated, rubyPrelude, TRAP_EXIT_CODE, type RunOptions } from '../../src/box/runner.js';
import { NpmRuntimeCatalog } from '../../src/runtimes/npm-ruby.js';
import { OciLayoutSource } from '../../src/image/oci-layout.js';
import { dir, file, tempDir } from '../convert/helpers.js';
import { expectedHelloOutput, helloBox, writeLayout } from '../fixtures/images.js';
import { assertBoxRunsAlikeInEngines } from '../helpers/engines/index.js';
import type { ImageSpec as ImageSpecOf } from '../convert/helpers.js';

let root: string;
let cleanup: () => Promise<void>;
let n = 0;
before(async () => {
  ({ path: root, cleanup } = await tempDir('boxproxy-runner-'));
});
after(async () => cleanup());

async function unpacked(spec: ImageSpecOf = helloBox()): Promise<UnpackedBox & { layout: string }> {
  const base = join(root, `r${++n}`);
  await writeLayout(join(base, 'layout'), spec);
  const box = await loadBox(new OciLayoutSource(join(base, 'layout')), '', { cacheDir: join(base, 'cache') });
  return { ...box, layout: join(base, 'layout') };
}

/** Runs the Box with boxproxy's runner, and checks node:wasi, wasmtime and wazero run it the same. */
async function runBox(box: UnpackedBox & { layout: string }, opts: RunOptions = {}) {
  const r = await runPlanIsolated(await planRun(box, opts), { stdio: 'pipe' });
  await assertBoxRunsAlikeInEngines(box.layout, opts, r);
  return r;
}

async function run(spec: ImageSpecOf = helloBox(), opts: RunOptions = {}) {
  return runBox(await unpacked(spec), opts);
}

describe('WASI runner', () => {
  test('argv = Entrypoint + Cmd, env from the config, files from the rootfs, PWD = WorkingDir', async () => {
    const r = await run();
    assert.equal(r.stderr, '');
    assert.equal(
      r.stdout,
      expectedHelloOutput({
        args: ['/app/hello.wasm', 'cat:message.txt', 'env:GREETING_NAME'],
        cwd: '/work',
        name: 'Box',
        extra: ['message.txt: relative read works', 'GREETING_NAME=Box'],
      }),
    );
    assert.equal(r.exitCode, 0);
  });

  test('user arguments replace Cmd, --env overrides and passes through, the exit status propagates', async () => {
    process.env.BOXPROXY_TEST_PASS = 'from the caller';
    try {
      const r = await run(helloBox({ config: { Entrypoint: ['/app/hello.wasm', 'fixed'] } }), {
        args: ['env:GREETING_NAME', 'env:EXTRA', 'env:BOXPROXY_TEST_PASS', 'exit:42'],
        env: ['GREETING_NAME=Override', 'EXTRA=1', 'BOXPROXY_TEST_PASS'],
      });
      assert.equal(r.exitCode, 42);
      assert.match(r.stdout, /^argv\[1\]=fixed\nargv\[2\]=env:GREETING_NAME\n/m);
      assert.doesNotMatch(r.stdout, /cat:message/);
      assert.match(r.stdout, /^GREETING_NAME=Override$/m);
      assert.match(r.stdout, /^EXTRA=1$/m);
      assert.match(r.stdout, /^BOXPROXY_TEST_PASS=from the caller$/m);
    } finally {
      delete process.env.BOXPROXY_TEST_PASS;
    }
  });

  test('--dir preopens a host directory at a guest path', async () => {
    const host = join(root, 'host-dir');
    await mkdir(host, { recursive: true });
    await writeFile(join(host, 'note.txt'), 'from the host\n');
    const r = await run(helloBox(), { args: ['cat:/mnt/host/note.txt'], dirs: [`${host}:/mnt/host`] });
    assert.match(r.stdout, /^\/mnt\/host\/note.txt: from the host$/m);
    assert.equal(r.exitCode, 0);
  });

  test('the dirs label maps rootfs directories to other guest paths', async () => {
    const spec = helloBox({
      config: { Labels: { [LABEL_DIRS]: JSON.stringify([{ guest: '/static', path: '/srv/www' }]) } },
      extraLayers: [{ entries: [dir('srv/'), dir('srv/www/'), file('srv/www/index.html', '<p>hi</p>\n')] }],
    });
    const r = await run(spec, { args: ['cat:/static/index.html'] });
    assert.match(r.stdout, /^\/static\/index.html: <p>hi<\/p>$/m);
  });

  test('a trap ends the module with 134 and a message; the caller is unharmed', async () => {
    const r = await run(helloBox(), { args: ['trap'] });
    assert.equal(r.exitCode, TRAP_EXIT_CODE);
    assert.match(r.stderr, /\/app\/hello.wasm trapped: unreachable/);
  });

  test('bad options and missing modules are BoxErrors', async () => {
    const box = await unpacked();
    await assert.rejects(planRun(box, { dirs: ['/nonexistent-dir-for-boxproxy:/x'] }), BoxError);
    await assert.rejects(planRun(box, { env: ['=x'] }), BoxError);
    const missing = await unpacked(helloBox({ config: { Entrypoint: ['/app/missing.wasm'] } }));
    await assert.rejects(planRun(missing), /missing.wasm is not a file inside its rootfs/);
    const escaping = await unpacked(helloBox({ config: { Entrypoint: ['/../../../../bin/true'] } }));
    await assert.rejects(planRun(escaping), BoxError);
  });

  test('parseDirOption', () => {
    assert.deepEqual(parseDirOption('/a:/b'), { host: '/a', guest: '/b' });
    assert.deepEqual(parseDirOption('/a'), { host: '/a', guest: '/a' });
    assert.throws(() => parseDirOption('/a:/b:ro'), /read-write/);
    assert.throws(() => parseDirOption('/a:b'), /absolute/);
  });
});

describe('ruby.wasm runner', () => {
  test('parseRubyArgs understands the usual command lines', () => {
    assert.deepEqual(parseRubyArgs(['/app/main.rb', 'a', '-x']), { loadPaths: [], requires: [], evals: [], script: '/app/main.rb', scriptArgs: ['a', '-x'], verbose: undefined });
    const c = parseRubyArgs(['-w', '-Ilib', '-r', 'json', '-e', 'puts 1', 'arg']);
    assert.deepEqual([c.loadPaths, c.requires, c.evals, c.script, c.scriptArgs, c.verbose], [['lib'], ['json'], ['puts 1'], undefined, ['arg'], true]);
    assert.throws(() => parseRubyArgs(['-n', 'x.rb']), /not supported/);
    assert.throws(() => parseRubyArgs([]), /names no script/);
  });

  test('the prelude carries arguments without quoting them into Ruby source', () => {
    const prelude = rubyPrelude(parseRubyArgs(['/app/x.rb', '#{`rm -rf /`}', '"\'']), '/app');
    assert.doesNotMatch(prelude, /rm -rf/);
  });

  test('runs a Ruby script from the rootfs with ARGV, $0, env and working dir, flushing stdout', async () => {
    const runtime = await new NpmRuntimeCatalog().ruby('3.3');
    assert.ok(runtime, 'an @ruby/*-wasm-wasi package is installed');
    const rubyWasm = await readFile(runtime.wasmPath);
    const spec: ImageSpecOf = {
      os: 'wasip1',
      architecture: 'wasm',
      layers: [
        { entries: [dir('.boxproxy/'), dir('.boxproxy/runtime/'), file('.boxproxy/runtime/ruby.wasm', rubyWasm, 0o555)] },
        {
          entries: [
            dir('etc/'),
            file('etc/greeting', 'Hello'),
            dir('app/'),
            file('app/main.rb', 'print File.read("/etc/greeting"), ", ", ENV["WHO"], " ", $0, " ", ARGV.inspect, " ", Dir.pwd, " ", File.read("rel.txt")\nexit 5 if ARGV.include?("fail")\n'),
            file('app/rel.txt', 'relative'),
          ],
        },
      ],
      config: {
        Entrypoint: ['/.boxproxy/runtime/ruby.wasm'],
        Cmd: ['/app/main.rb', 'one'],
        Env: ['WHO=ruby'],
        WorkingDir: '/app',
        Labels: { [LABEL_RUNNER]: RUNNER_RUBY },
      },
    };
    const box = await unpacked(spec);
    const ok = await runBox(box);
    assert.equal(ok.stdout, 'Hello, ruby /app/main.rb ["one"] /app relative');
    assert.equal(ok.exitCode, 0, ok.stderr);
    const failing = await runBox(box, { args: ['/app/main.rb', 'fail'] });
    assert.equal(failing.exitCode, 5);
    const raising = await runBox(box, { args: ['-e', 'raise ArgumentError, "boom"'] });
    assert.equal(raising.exitCode, 1);
    assert.match(raising.stderr, /boom \(ArgumentError\)/);
  });
});
