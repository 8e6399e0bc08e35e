import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isRepositoryName, isTag, looksLikeRegistryHost } from '../../src/oci/names.js';
import { isDigest, looksLikeDigest, sha256 } from '../../src/oci/digest.js';

test('repository names follow the distribution-spec grammar', () => {
  for (const ok of ['a', 'library/nginx', 'a-b/c__d/e.f', 'x/y/z', 'a---b']) assert.ok(isRepositoryName(ok), ok);
  for (const bad of ['', 'A', '../etc', 'a//b', '/a', 'a/', 'a..b', 'a_', '-a', 'a/.b', 'a b', 'a%2fb', 'x'.repeat(256)]) {
    assert.ok(!isRepositoryName(bad), bad);
  }
});

test('tags follow the grammar and stay under 129 characters', () => {
  for (const ok of ['latest', '1.0', 'v1_2-3', '_x', 'A'.repeat(128)]) assert.ok(isTag(ok), ok);
  for (const bad of ['', '.x', '-x', 'a/b', 'a:b', 'A'.repeat(129), 'sha256:abc']) assert.ok(!isTag(bad), bad);
});

test('digests: sha256 only, lowercase hex of 64', () => {
  const d = sha256('x');
  assert.ok(isDigest(d));
  assert.ok(!isDigest(d.toUpperCase()));
  assert.ok(!isDigest('sha256:totallywrong'));
  assert.ok(looksLikeDigest('sha256:totallywrong'));
  assert.ok(!looksLikeDigest('latest'));
  assert.ok(!isDigest(`sha512:${'a'.repeat(128)}`));
});

test('registry hosts are recognised by a dot, a port or localhost', () => {
  assert.ok(looksLikeRegistryHost('ghcr.io'));
  assert.ok(looksLikeRegistryHost('127.0.0.1:5001'));
  assert.ok(looksLikeRegistryHost('localhost'));
  assert.ok(!looksLikeRegistryHost('library'));
});
