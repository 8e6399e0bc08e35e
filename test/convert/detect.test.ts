import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { classifyBytes, describeKind, detect, isShellForm, parseSimpleShell } from '../../src/convert/detect.js';
import { VirtualFs, type Inode } from '../../src/convert/vfs.js';
import { elf, WASM_COMPONENT, wasmModule } from './helpers.js';

describe('classifyBytes', () => {
  test('wasm core module and component', () => {
    assert.deepEqual(classifyBytes(wasmModule()), { kind: 'wasm-module' });
    assert.deepEqual(classifyBytes(WASM_COMPONENT), { kind: 'wasm-component', version: 0x0d });
  });

  test('ELF: class, machine, static or dynamic, interpreter', () => {
    const dyn = classifyBytes(elf({ interpreter: '/lib/ld-musl-x86_64.so.1' }));
    assert.deepEqual(dyn, {
      kind: 'elf',
      bits: 64,
      endian: 'little',
      machine: 'x86-64',
      elfType: 'executable',
      linkage: 'dynamic',
      interpreter: '/lib/ld-musl-x86_64.so.1',
    });
    assert.equal(describeKind(dyn), 'an x86-64 ELF executable (dynamically linked)');
    const stat = classifyBytes(elf({ machine: 0xb7 }));
    assert.ok(stat.kind === 'elf' && stat.linkage === 'static' && stat.machine === 'AArch64');
    assert.equal(describeKind(stat), 'an AArch64 ELF executable (statically linked)');
    const lib = classifyBytes(elf({ type: 3 }));
    assert.ok(lib.kind === 'elf' && lib.elfType === 'shared-object');
    const pie = classifyBytes(elf({ type: 3, interpreter: '/lib64/ld-linux-x86-64.so.2' }));
    assert.ok(pie.kind === 'elf' && pie.elfType === 'executable' && pie.linkage === 'dynamic');
  });

  test('shebang scripts', () => {
    assert.deepEqual(classifyBytes(Buffer.from('#!/usr/bin/env ruby\nputs 1\n')), { kind: 'script', interpreter: '/usr/bin/env', arg: 'ruby' });
    assert.deepEqual(classifyBytes(Buffer.from('#! /bin/sh\r\necho\n')), { kind: 'script', interpreter: '/bin/sh' });
    assert.deepEqual(classifyBytes(Buffer.from('#!/usr/bin/ruby -w -E utf-8\n')), { kind: 'script', interpreter: '/usr/bin/ruby', arg: '-w -E utf-8' });
    assert.deepEqual(classifyBytes(Buffer.from('hello')), { kind: 'data' });
    assert.deepEqual(classifyBytes(Buffer.alloc(0)), { kind: 'data' });
  });
});

describe('shell form', () => {
  test('recognized only as <shell> -c <script>', () => {
    assert.ok(isShellForm(['/bin/sh', '-c', 'ruby app.rb']));
    assert.ok(isShellForm(['bash', '-c', 'x']));
    assert.ok(!isShellForm(['/bin/sh', 'script.sh']));
    assert.ok(!isShellForm(['/usr/bin/python', '-c', 'print(1)']));
  });

  test('simple commands split like a shell would', () => {
    assert.deepEqual(parseSimpleShell('ruby /app/main.rb --name "a b" \'c d\' e\\ f'), {
      ok: true,
      argv: ['ruby', '/app/main.rb', '--name', 'a b', 'c d', 'e f'],
      env: [],
    });
    assert.deepEqual(parseSimpleShell('exec /app/hello.wasm'), { ok: true, argv: ['/app/hello.wasm'], env: [] });
    assert.deepEqual(parseSimpleShell('FOO=bar BAZ="q x" app arg=1'), { ok: true, argv: ['app', 'arg=1'], env: ['FOO=bar', 'BAZ=q x'] });
    assert.deepEqual(parseSimpleShell('echo "say \\"hi\\""'), { ok: true, argv: ['echo', 'say "hi"'], env: [] });
    assert.deepEqual(parseSimpleShell('a#b'), { ok: true, argv: ['a#b'], env: [] });
  });

  test('anything needing a shell is named', () => {
    const cases: Array<[string, RegExp]> = [
      ['a | b', /pipe/],
      ['a > out', /redirection/],
      ['a && b', /&/],
      ['a; b', /separator/],
      ['echo $HOME', /variable/],
      ['echo "$HOME"', /variable/],
      ['echo `date`', /substitution/],
      ['ls *.rb', /glob/],
      ['cd ~', /tilde/],
      ['echo "unterminated', /unterminated/],
      ['run # comment', /comment/],
      ['', /empty/],
    ];
    for (const [script, reason] of cases) {
      const r = parseSimpleShell(script);
      assert.ok(!r.ok, script);
      assert.match(r.reason, reason, script);
    }
  });
});

function inode(id: number, kind: Inode['kind'], mode = 0o755): Inode {
  return { id, size: 10, mode, kind };
}

describe('detect', () => {
  const fs = new VirtualFs();
  fs.set(['usr', 'local', 'bin', 'ruby'], { type: 'symlink', target: 'ruby3.3', touched: 0 }, 0);
  fs.set(['usr', 'local', 'bin', 'ruby3.3'], { type: 'file', inode: inode(1, { kind: 'elf', bits: 64, endian: 'little', machine: 'x86-64', elfType: 'executable', linkage: 'dynamic' }), touched: 0 }, 0);
  fs.set(['bin', 'sh'], { type: 'file', inode: inode(2, { kind: 'elf', bits: 64, endian: 'little', machine: 'x86-64', elfType: 'executable', linkage: 'dynamic' }), touched: 0 }, 0);
  fs.set(['app', 'hello.wasm'], { type: 'file', inode: inode(3, { kind: 'wasm-module' }, 0o644), touched: 0 }, 0);
  fs.set(['app', 'notexec'], { type: 'file', inode: inode(4, { kind: 'data' }, 0o644), touched: 0 }, 0);
  const base = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers' as const, diff_ids: [] } };

  test('argv = Entrypoint + Cmd, argv[0] through PATH and symlinks', () => {
    const d = detect(fs, { ...base, config: { Env: ['PATH=/usr/local/bin:/usr/bin'], Entrypoint: ['ruby'], Cmd: ['/app/main.rb'] } });
    assert.deepEqual(d.argv, ['ruby', '/app/main.rb']);
    assert.equal(d.entrypointCount, 1);
    assert.equal(d.target?.path, '/usr/local/bin/ruby');
    assert.equal(d.target?.resolvedPath, '/usr/local/bin/ruby3.3');
  });

  test('shell form is unwrapped; relative paths resolve against WorkingDir', () => {
    const d = detect(fs, { ...base, config: { WorkingDir: '/app', Cmd: ['/bin/sh', '-c', 'GREETING=hi exec ./hello.wasm x'] } });
    assert.deepEqual(d.argv, ['./hello.wasm', 'x']);
    assert.deepEqual(d.env, ['GREETING=hi']);
    assert.equal(d.target?.resolvedPath, '/app/hello.wasm');
    assert.equal(d.shell?.simple, true);
  });

  test('problems are precise', () => {
    assert.match(detect(fs, { ...base, config: {} }).problem ?? '', /no Entrypoint or Cmd/);
    assert.match(detect(fs, { ...base, config: { Cmd: ['nginx'] } }).problem ?? '', /"nginx" is not in the image's PATH/);
    assert.match(detect(fs, { ...base, config: { Cmd: ['/bin/sh', '-c', 'a | b'] } }).problem ?? '', /shell script.*pipe/);
    assert.match(detect(fs, { ...base, config: { Cmd: ['/nope'] } }).problem ?? '', /\/nope does not exist/);
  });
});
