import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseRuntimeCommand } from '../../../src/convert/strategies/wasm-runtime-wrapper.js';

function parse(argv: string[]) {
  const r = parseRuntimeCommand(argv);
  if (!r.ok) throw new Error(r.reason);
  const { runtime, module, argsIndex, env, inheritEnv, dirs } = r.command;
  return { runtime, module, args: argv.slice(argsIndex), env, inheritEnv, dirs };
}

describe('wasm runtime command lines', () => {
  test('wasmtime, with and without run, new and old dir syntax', () => {
    assert.deepEqual(parse(['wasmtime', 'run', '--dir', '/data', '--dir=/srv::/mnt', '--mapdir', '/g::/h', '--env', 'A=1', '--env', 'B', '-S', 'inherit-env', 'app.wasm', '--flag', 'x']), {
      runtime: 'wasmtime',
      module: 'app.wasm',
      args: ['--flag', 'x'],
      env: ['A=1', 'B'],
      inheritEnv: true,
      dirs: [
        { path: '/data', guest: '/data' },
        { path: '/srv', guest: '/mnt' },
        { guest: '/g', path: '/h' },
      ],
    });
    assert.deepEqual(parse(['/usr/bin/wasmtime', '-O', 'opt-level=2', '--', 'app.wasm', 'a']).args, ['a']);
    assert.equal(parse(['wasmtime', '-Wmax-memory-size=1', 'app.wasm']).module, 'app.wasm');
  });

  test('wasmedge: --dir GUEST:HOST, boolean --enable-* flags', () => {
    assert.deepEqual(parse(['wasmedge', '--enable-all', '--dir', '/g:/h', '--dir', '/same', '--env', 'K=V', 'm.wasm', 'a']), {
      runtime: 'wasmedge',
      module: 'm.wasm',
      args: ['a'],
      env: ['K=V'],
      inheritEnv: false,
      dirs: [
        { guest: '/g', path: '/h' },
        { guest: '/same', path: '/same' },
      ],
    });
  });

  test('wasmer run: --mapdir GUEST:HOST, arguments after --', () => {
    const r = parse(['wasmer', 'run', '--mapdir', '/g:/h', '--env=X=1', 'm.wasm', '--', '-v', 'file']);
    assert.deepEqual(r.dirs, [{ guest: '/g', path: '/h' }]);
    assert.deepEqual(r.env, ['X=1']);
    assert.deepEqual(r.args, ['-v', 'file']);
  });

  test('iwasm: --dir=, --map-dir=GUEST::HOST, --env=, -v=n', () => {
    const r = parse(['iwasm', '-v=3', '--stack-size=65536', '--dir=/data', '--map-dir=/g::/h', '--env=K=V', 'm.wasm', 'a']);
    assert.deepEqual(r.dirs, [
      { guest: '/data', path: '/data' },
      { guest: '/g', path: '/h' },
    ]);
    assert.deepEqual(r.env, ['K=V']);
    assert.deepEqual(r.args, ['a']);
  });

  test('wasm3: value flags skipped', () => {
    const r = parse(['wasm3', '--stack-size', '1000000', 'm.wasm', 'a', 'b']);
    assert.equal(r.module, 'm.wasm');
    assert.deepEqual(r.args, ['a', 'b']);
  });

  test('what changes the meaning is refused with the flag named', () => {
    const cases: Array<[string[], RegExp]> = [
      [['wasmtime', 'run', '--invoke', 'add', 'm.wasm'], /--invoke/],
      [['wasmtime', 'compile', 'm.wasm'], /`wasmtime compile` does not run a module/],
      [['wasmedge', '--reactor', 'm.wasm'], /reactor/],
      [['wasmer', 'run', '-i', 'f', 'm.wasm'], /-i/],
      [['iwasm', '-f', 'f', 'm.wasm'], /-f/],
      [['wasm3', '--func', 'f', 'm.wasm'], /--func/],
      [['wasmtime', 'run', '--dir'], /no value/],
      [['wasmtime', 'run'], /names no module/],
      [['node', 'x.js'], /not a known Wasm runtime/],
    ];
    for (const [argv, reason] of cases) {
      const r = parseRuntimeCommand(argv);
      assert.ok(!r.ok, argv.join(' '));
      assert.match(r.reason, reason, argv.join(' '));
    }
  });
});
