import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { moduleLevelImports, pythonTrial } from '../../src/convert/python-imports.js';
import { parsePyvenvCfg } from '../../src/convert/python-layout.js';
import { pythonCommand } from '../../src/convert/strategies/python.js';

describe('python imports: what the trial tries', () => {
  test('module-level imports, normalized; indented ones (try:, if, def) are left to run time', () => {
    const src = `"""doc"""
from __future__ import annotations
import os, sys as system
import xml.etree.ElementTree as ET
from lxml import etree
from jinja2 import (
    Environment,  # the template engine
    select_autoescape as sa,
)
from yaml import \\
    safe_load
from pkg import *
try:
    import ujson as json
except ImportError:
    import json
def later():
    import numpy
if system.platform == "win32":
    import winreg
`;
    assert.deepEqual(moduleLevelImports(src), [
      'import os',
      'import sys',
      'import xml.etree.ElementTree',
      'from lxml import etree',
      'from jinja2 import Environment, select_autoescape',
      'from yaml import safe_load',
      'from pkg import *',
    ]);
  });

  test('relative imports resolve against the package (python -m pkg runs pkg/__main__.py)', () => {
    assert.deepEqual(moduleLevelImports('from .core import report\nfrom . import util\nfrom ..up import x\n', 'inventory'), [
      'from inventory.core import report',
      'from inventory import util',
    ]);
    assert.deepEqual(moduleLevelImports('from ..base import b\n', 'a.b'), ['from a.base import b']);
    // Outside a package a relative import cannot run: nothing to try.
    assert.deepEqual(moduleLevelImports('from .x import y\n'), []);
  });

  test('pythonCommand splits the interpreter options from what runs', () => {
    assert.deepEqual(pythonCommand(['-u', '-X', 'dev', 'app.py', '-x']), { main: { kind: 'script', path: 'app.py' }, options: ['-u', '-X', 'dev'] });
    assert.deepEqual(pythonCommand(['-I', '-m', 'pkg', '--flag']), { main: { kind: 'module', name: 'pkg' }, options: ['-I'] });
    assert.deepEqual(pythonCommand(['-Bc', 'print(1)']), { main: { kind: 'code', code: 'print(1)' }, options: ['-B'] });
  });

  test('the trial command: options, the program, a marker, sys.path[0], the probes', () => {
    const spec = pythonTrial(['-I'], undefined, ['import yaml'], 'refuse');
    const args = spec.command('MARK');
    assert.equal(args[0], '-I');
    assert.equal(args[1], '-c');
    assert.deepEqual(args.slice(3), ['MARK', '-', 'import yaml']);
    assert.deepEqual(spec.probes, ['import yaml']);
  });

  test('pyvenv.cfg', () => {
    const cfg = parsePyvenvCfg('home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\nexecutable = /usr/bin/python3.11\n');
    assert.equal(cfg.get('home'), '/usr/bin');
    assert.equal(cfg.get('include-system-site-packages'), 'false');
  });
});
