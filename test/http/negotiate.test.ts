import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAccept, parseRange } from '../../src/http/negotiate.js';
import { OciError } from '../../src/oci/errors.js';
import { DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST } from '../../src/oci/mediatypes.js';

test('no Accept header or a wildcard accepts every manifest type', () => {
  for (const h of [undefined, '*/*', 'application/*']) {
    const a = parseAccept(h);
    for (const t of [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST]) assert.ok(a(t), `${h} ${t}`);
  }
});

test('explicit lists, repeated headers, parameters and q=0', () => {
  const a = parseAccept([`${DOCKER_MANIFEST}, ${OCI_MANIFEST};q=0.9`, `${DOCKER_LIST}`]);
  assert.ok(a(DOCKER_MANIFEST) && a(OCI_MANIFEST) && a(DOCKER_LIST));
  assert.ok(!a(OCI_INDEX));
  const b = parseAccept(`*/*, ${OCI_INDEX};q=0`);
  assert.ok(b(OCI_MANIFEST));
  assert.ok(!b(OCI_INDEX));
});

test('a malformed Accept header is a 400 OCI error', () => {
  for (const bad of ['garbage', 'a/b;;', 'text/ html', '/json']) {
    assert.throws(() => parseAccept(bad), (e: unknown) => e instanceof OciError && e.status === 400, bad);
  }
});

test('ranges: single byte ranges, suffixes, open ends, unsatisfiable, ignored forms', () => {
  assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
  assert.deepEqual(parseRange('bytes=90-', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-10', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=95-200', 100), { start: 95, end: 99 });
  assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=5-2', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=-0', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=0-1,5-6', 100), undefined);
  assert.equal(parseRange('items=0-1', 100), undefined);
  assert.equal(parseRange(undefined, 100), undefined);
});
