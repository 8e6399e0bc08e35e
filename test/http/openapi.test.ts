import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import SwaggerParser from '@apidevtools/swagger-parser';
import { parse as parseYaml } from 'yaml';
import { ROUTES } from '../../src/http/routes.js';

const SPEC_PATH = fileURLToPath(new URL('../../openapi.yaml', import.meta.url));
const OPERATION_KEYS = ['get', 'head', 'post', 'put', 'patch', 'delete', 'options', 'trace'] as const;

interface OpenApiDoc {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, unknown>>;
  components?: { schemas?: Record<string, unknown> };
}

function loadSpec(): OpenApiDoc {
  return parseYaml(readFileSync(SPEC_PATH, 'utf8')) as OpenApiDoc;
}

function documentedOperations(doc: OpenApiDoc): string[] {
  const pairs: string[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const key of OPERATION_KEYS) if (key in item) pairs.push(`${key.toUpperCase()} ${path}`);
  }
  return pairs.sort();
}

test('openapi.yaml is an OpenAPI 3.1 document with paths', () => {
  const doc = loadSpec();
  assert.match(doc.openapi, /^3\.1\.\d+$/);
  assert.equal(doc.info.title, 'boxproxy');
  assert.ok(Object.keys(doc.paths).length > 0);
});

test('openapi.yaml validates against the OpenAPI 3.1 schema, all $refs resolving', async () => {
  // Throws with the failing pointer when the document is invalid.
  await SwaggerParser.validate(SPEC_PATH);
});

test('openapi.yaml lists exactly the (path, method) pairs of the ROUTES table', () => {
  const served = ROUTES.flatMap((r) => r.methods.map((m) => `${m} ${r.path}`)).sort();
  assert.deepEqual(documentedOperations(loadSpec()), served);
});

type ParameterRef = { $ref?: string; name?: string; in?: string };

test('every path template parameter is declared for each operation on that path', () => {
  const doc = loadSpec();
  const pathParams = (list: ParameterRef[] | undefined): string[] =>
    (list ?? []).map((p) => (p.$ref ? p.$ref.split('/').pop() : p.in === 'path' ? p.name : undefined)).filter((n): n is string => n !== undefined);
  for (const [path, item] of Object.entries(doc.paths)) {
    const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1] as string).sort();
    for (const key of OPERATION_KEYS) {
      const op = item[key] as { parameters?: ParameterRef[] } | undefined;
      if (!op) continue;
      const declared = new Set([...pathParams(item.parameters as ParameterRef[] | undefined), ...pathParams(op.parameters)]);
      assert.deepEqual(templated.filter((t) => declared.has(t)), templated, `${key.toUpperCase()} ${path}`);
    }
  }
});

test('registry push, delete and upload operations document only 405 UNSUPPORTED; others a success', () => {
  const doc = loadSpec();
  for (const route of ROUTES) {
    for (const method of route.methods) {
      const op = doc.paths[route.path]?.[method.toLowerCase()] as { responses: Record<string, unknown>; tags?: string[] };
      const refusing = route.path.startsWith('/v2/') && (method === 'PUT' || method === 'DELETE' || method === 'PATCH' || method === 'POST' || route.id.startsWith('upload') || route.id === 'catalog');
      if (refusing) {
        assert.deepEqual(Object.keys(op.responses), ['405'], `${method} ${route.path}`);
        assert.deepEqual(op.tags, ['unsupported'], `${method} ${route.path}`);
      } else {
        assert.ok(Object.keys(op.responses).some((s) => s.startsWith('2')), `${method} ${route.path} has a success response`);
      }
    }
  }
});
