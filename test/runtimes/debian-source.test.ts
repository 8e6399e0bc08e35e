// The runtime builds' source-package discovery (scripts/runtimes/lib/debian-source.sh) on a machine like a new
// one: apt configured with Debian's stock binary entry only, no deb-src anywhere. It must find the sources
// through its own configuration and leave the machine's untouched.
import assert from 'node:assert/strict';
import { readdir, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTempDir, removeTempDir, run } from '../helpers/proc.js';

const script = join(import.meta.dirname, '..', '..', 'scripts', 'runtimes', 'lib', 'debian-source.sh');

describe('Debian source discovery without a deb-src entry', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dir = await makeTempDir('debsrc-');
    const system = join(dir, 'etc-apt');
    await mkdir(join(system, 'sources.list.d'), { recursive: true });
    await mkdir(join(system, 'lists', 'partial'), { recursive: true });
    await writeFile(join(system, 'sources.list'), '');
    // Debian's stock bookworm entry, as on a new machine: binary packages only.
    await writeFile(
      join(system, 'sources.list.d', 'debian.sources'),
      'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n',
    );
    const conf = join(dir, 'apt.conf');
    await writeFile(
      conf,
      `Dir::Etc::sourcelist "${join(system, 'sources.list')}";\nDir::Etc::sourceparts "${join(system, 'sources.list.d')}";\nDir::State::Lists "${join(system, 'lists')}";\n`,
    );
    env = { ...process.env, APT_CONFIG: conf, DEBIAN_SOURCE_STATE: join(dir, 'state') };
  });
  after(() => removeTempDir(dir));

  const version = (suite: string, pkg: string) => run('bash', [script, 'version', suite, pkg], { env, allowFailure: true });

  it('the stock configuration itself knows no source package', async () => {
    const r = await run('apt-cache', ['showsrc', 'python3.11'], { env, allowFailure: true });
    assert.doesNotMatch(r.stdout, /^Version:/m);
  });

  it('finds bookworm python3.11 and zlib, and trixie ruby3.3, python3.13, quickjs and wasi-libc', async () => {
    const cases: Array<[string, string, RegExp]> = [
      ['bookworm', 'python3.11', /^3\.11\.\d+-/],
      ['bookworm', 'zlib', /^1:1\.2\./],
      ['trixie', 'ruby3.3', /^3\.3\.\d+-/],
      ['trixie', 'python3.13', /^3\.13\.\d+-/],
      ['trixie', 'quickjs', /^20\d\d\.\d\d\.\d\d-/],
      ['trixie', 'wasi-libc', /^0\.0~git20\d{6}/],
    ];
    for (const [suite, pkg, want] of cases) {
      const r = await version(suite, pkg);
      assert.equal(r.code, 0, `${suite} ${pkg}: ${r.stderr}`);
      assert.match(r.stdout.trim(), want, `${suite} ${pkg}`);
    }
  });

  it('answers nothing (and success) for a package that does not exist, and refuses an unknown suite', async () => {
    const missing = await version('bookworm', 'no-such-source-package-boxproxy');
    assert.equal(missing.code, 0, missing.stderr);
    assert.equal(missing.stdout, '');
    const bad = await version('sid', 'python3.11');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /unknown suite sid/);
  });

  it('changed nothing in the machine configuration it was given', async () => {
    assert.deepEqual(await readdir(join(dir, 'etc-apt', 'sources.list.d')), ['debian.sources']);
    assert.deepEqual((await readdir(join(dir, 'etc-apt', 'lists'))).sort(), ['partial']);
  });
});
