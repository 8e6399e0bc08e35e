import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkWasiCommand, readModuleInfo } from '../../src/convert/wasm-imports.js';
import { wasmModule } from './helpers.js';

describe('wasm imports', () => {
  test('the brief\'s minimal module: \\0asm 1 + an import of wasi_snapshot_preview1.fd_write', () => {
    const minimal = Buffer.from([
      0, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
      // type section: one func type (i32 i32 i32 i32) -> i32
      1, 9, 1, 0x60, 4, 0x7f, 0x7f, 0x7f, 0x7f, 1, 0x7f,
      // import section
      2, 0x23, 1, 22, ...Buffer.from('wasi_snapshot_preview1'), 8, ...Buffer.from('fd_write'), 0, 0,
    ]);
    assert.deepEqual(readModuleInfo(minimal).imports, [{ module: 'wasi_snapshot_preview1', name: 'fd_write', kind: 'func' }]);
    assert.deepEqual(checkWasiCommand(minimal), { ok: false, reason: 'exports no _start function', info: readModuleInfo(minimal) });
  });

  test('a WASI command passes; foreign imports, reactors and garbage do not', () => {
    const ok = checkWasiCommand(wasmModule());
    assert.ok(ok.ok);
    assert.deepEqual(ok.info.exports.map((e) => e.name), ['memory', '_start']);
    const foreign = checkWasiCommand(wasmModule({ imports: [['wasi_snapshot_preview1', 'fd_write'], ['env', 'emscripten_x'], ['rb-js-abi-host', 'y']] }));
    assert.ok(!foreign.ok);
    assert.equal(foreign.reason, 'imports from "env", "rb-js-abi-host" besides wasi_snapshot_preview1');
    const reactor = checkWasiCommand(wasmModule({ start: false, reactor: true }));
    assert.ok(!reactor.ok && /reactor/.test(reactor.reason));
    const truncated = checkWasiCommand(wasmModule().subarray(0, 20));
    assert.ok(!truncated.ok && /not a valid core module/.test(truncated.reason));
    assert.ok(!checkWasiCommand(Buffer.from('\0asm\x0d\0\x01\0')).ok);
  });

  test('a real module built by WebAssembly agrees with the parser', async () => {
    const bytes = wasmModule({ imports: [['wasi_snapshot_preview1', 'fd_write'], ['wasi_snapshot_preview1', 'proc_exit']] });
    const mod = await WebAssembly.compile(new Uint8Array(bytes));
    assert.deepEqual(
      WebAssembly.Module.imports(mod).map((i) => `${i.module}.${i.name}`),
      readModuleInfo(bytes).imports.map((i) => `${i.module}.${i.name}`),
    );
  });
});
