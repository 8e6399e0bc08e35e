// Python shapes of the real-image corpus (issue #12): Debian's python3 and its packages, laid out the ways
// Dockerfiles lay them out. Each app prints what its Box must print too (test/corpus/python.test.ts).
import type { Recipe } from '../recipe.js';

/** One install layer for most shapes, so they share it like images FROM one base share theirs. */
const PYTHON_PACKAGES = ['python3', 'python3-venv', 'python3-jinja2', 'python3-yaml', 'python3-click', 'python3-pygments'];

/** Where the interpreter looks for packages: the site part of sys.path, as the image's own Python computes it. */
const PRINT_SITE = `print("site:", [p for p in sys.path if p.endswith("-packages")])`;

const JINJA_APP = `import sys
import click
import jinja2
import yaml

DATA = """
name: corpus
items:
  - {name: alpha, size: 3}
  - {name: "b<e>ta", size: 5}
"""


@click.command()
@click.option("--greeting", default="Hello")
@click.argument("who", default="Box")
def main(greeting, who):
    doc = yaml.safe_load(DATA)
    env = jinja2.Environment(autoescape=True)
    page = env.from_string("{{ g }}, {{ w }}!{% for i in items %} [{{ i.name }}={{ i.size * 2 }}]{% endfor %}")
    click.echo(page.render(g=greeting, w=who, items=doc["items"]))
    click.echo(yaml.safe_dump({"name": doc["name"], "total": sum(i["size"] for i in doc["items"])}, sort_keys=True).strip())
    ${PRINT_SITE}
    sys.exit(3)


main()
`;

const VENV_PATH = 'PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The virtualenv images share their layers: one venv, two commands. */
const VENV: Pick<Recipe, 'suite' | 'packages' | 'files' | 'run'> = {
  suite: 'bookworm',
  packages: PYTHON_PACKAGES,
  files: {
    '/src/greeter/setup.py': `from setuptools import setup

setup(name="greeter", version="1.2.0", packages=["greeter"], entry_points={"console_scripts": ["greet = greeter:main"]})
`,
    '/src/greeter/greeter/__init__.py': `import sys

VERSION = "1.2.0"


def greeting(name):
    return f"Greetings, {name}, from greeter {VERSION}"


def main():
    print(greeting(sys.argv[1] if len(sys.argv) > 1 else "venv"))
    return 0
`,
    '/app/main.py': `import sys
import greeter

print(greeter.greeting("Box"))
print("prefix:", sys.prefix, "base:", sys.base_prefix)
try:
    import jinja2
    print("jinja2 visible", jinja2.__version__)
except ImportError as e:
    print("jinja2 hidden by the venv:", e)
${PRINT_SITE}
`,
  },
  run: ['python3 -m venv /opt/venv', '/opt/venv/bin/pip install -q --no-index --no-cache-dir --disable-pip-version-check /src/greeter'],
};

export const PYTHON_RECIPES: readonly Recipe[] = [
  {
    name: 'python-debian',
    description: "Debian's python3 with python3-jinja2, -yaml and -click (C speedups with pure-Python fallbacks), CMD python3 /app/x.py",
    suite: 'bookworm',
    packages: PYTHON_PACKAGES,
    files: { '/app/x.py': JINJA_APP },
    config: { Cmd: ['python3', '/app/x.py'], WorkingDir: '/app' },
  },
  {
    name: 'python-official',
    description: 'the official python image layout: /usr/local/bin/python3.11, /usr/local/lib/python3.11/site-packages, PYTHON_VERSION',
    suite: 'bookworm',
    packages: PYTHON_PACKAGES,
    files: { '/app/x.py': JINJA_APP },
    run: [
      // The interpreter, its stdlib and the app's packages move under /usr/local, as python:3.11 has them, and
      // Debian's copies are purged (whiteouts in this layer). Libraries stay: marked manually installed.
      'mkdir -p /usr/local/bin /usr/local/lib/python3.11/site-packages',
      'cp -a /usr/bin/python3.11 /usr/local/bin/python3.11',
      'cp -a /usr/lib/python3.11/. /usr/local/lib/python3.11/',
      'cd /usr/lib/python3/dist-packages && cp -a jinja2 markupsafe yaml _yaml click Jinja2-*-info MarkupSafe-*-info PyYAML-*-info click-*-info /usr/local/lib/python3.11/site-packages/',
      'ln -s python3.11 /usr/local/bin/python3 && ln -s python3 /usr/local/bin/python',
      // Upstream's site module (frozen into python:3.11's binary) lists <prefix>/lib/python3.11/site-packages;
      // Debian's (frozen into this binary) only in a venv, so the image's sitecustomize adds it.
      'rm -f /usr/local/lib/python3.11/sitecustomize.py',
      `printf 'import site\\nsite.addsitedir("/usr/local/lib/python3.11/site-packages")\\n' > /usr/local/lib/python3.11/sitecustomize.py`,
      "apt-mark manual $(dpkg-query -W -f '${Package}\\n' 'lib*' | grep -v '^libpython') >/dev/null",
      'apt-get purge -y -qq python3 python3.11 python3-minimal python3.11-minimal libpython3.11-minimal libpython3.11-stdlib python3-venv python3.11-venv python3-jinja2 python3-markupsafe python3-yaml python3-click python3-pygments',
      'rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin',
    ],
    config: {
      Env: ['PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin', 'LANG=C.UTF-8', 'PYTHON_VERSION=3.11.2'],
      Cmd: ['python3', '/app/x.py'],
    },
  },
  {
    name: 'python-venv',
    description: 'a virtualenv app: python3 -m venv /opt/venv, pip install of the app package, ENV PATH=/opt/venv/bin:$PATH',
    ...VENV,
    config: { Env: [VENV_PATH], Cmd: ['python', '/app/main.py'], WorkingDir: '/app' },
  },
  {
    name: 'python-venv-script',
    description: "a virtualenv's console script (#!/opt/venv/bin/python) as the command",
    ...VENV,
    config: { Env: [VENV_PATH], Cmd: ['greet', 'corpus'] },
  },
  {
    name: 'python-pygmentize',
    description: "a console-script entry point: Debian's /usr/bin/pygmentize (#! /usr/bin/python3)",
    suite: 'bookworm',
    packages: PYTHON_PACKAGES,
    files: {
      '/work/sample.py': `def fib(n: int) -> int:
    """The n-th Fibonacci number."""
    return n if n < 2 else fib(n - 1) + fib(n - 2)


print([fib(i) for i in range(10)])  # <- a comment
`,
    },
    config: { Entrypoint: ['pygmentize'], Cmd: ['-f', 'html', '-l', 'python', 'sample.py'], WorkingDir: '/work' },
  },
  {
    name: 'python-module',
    description: 'python -m package from the working directory, with a relative import inside the package',
    suite: 'bookworm',
    packages: PYTHON_PACKAGES,
    files: {
      '/srv/inventory/__init__.py': '"""A small inventory report."""\n',
      '/srv/inventory/core.py': `import yaml

STOCK = yaml.safe_load("""
apples: 4
pears: 0
plums: 12
""")


def report(fmt):
    rows = sorted(STOCK.items())
    if fmt == "yaml":
        return yaml.safe_dump(dict(rows)).strip()
    return "\\n".join(f"{k:8} {v:3}{'  (out)' if v == 0 else ''}" for k, v in rows)
`,
      '/srv/inventory/__main__.py': `import argparse
import sys

from .core import report

parser = argparse.ArgumentParser(prog="inventory")
parser.add_argument("--format", choices=["text", "yaml"], default="text")
args = parser.parse_args()
print(report(args.format))
print("package:", __package__, "main:", __name__, "path0:", sys.path[0])
sys.exit(0 if args.format == "text" else 4)
`,
    },
    config: { Entrypoint: ['python3', '-m', 'inventory'], Cmd: ['--format', 'text'], WorkingDir: '/srv' },
  },
  {
    name: 'python-pythonpath',
    description: 'a library directory on ENV PYTHONPATH, imported by the app',
    suite: 'bookworm',
    packages: PYTHON_PACKAGES,
    files: {
      '/opt/lib/shapes/__init__.py': `import math


def area(kind, size):
    return {"square": size * size, "circle": round(math.pi * size * size, 3)}[kind]
`,
      '/app/run.py': `import sys
from shapes import area

for kind in ("square", "circle"):
    print(kind, area(kind, 2))
print("path1:", sys.path[1])
${PRINT_SITE}
`,
    },
    config: { Env: ['PYTHONPATH=/opt/lib'], Cmd: ['python3', '/app/run.py'] },
  },
  {
    name: 'python-numpy',
    description: 'a hard C dependency without a fallback: python3-numpy',
    suite: 'bookworm',
    packages: ['python3', 'python3-numpy'],
    files: {
      '/app/stats.py': `import numpy

a = numpy.arange(12).reshape(3, 4)
print(a.sum(axis=0).tolist(), float(a.mean()))
`,
    },
    config: { Cmd: ['python3', '/app/stats.py'] },
  },
];
