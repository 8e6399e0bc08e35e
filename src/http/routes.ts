// Every route the server answers, in OpenAPI path-template form. The router
// dispatches on these names and test/http/openapi.test.ts checks openapi.yaml
// against this table, so the two cannot drift apart.
export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RouteSpec {
  id: string;
  path: string;
  methods: readonly HttpMethod[];
}

export const ROUTES: readonly RouteSpec[] = [
  { id: 'base', path: '/v2/', methods: ['GET', 'HEAD'] },
  { id: 'catalog', path: '/v2/_catalog', methods: ['GET'] },
  { id: 'manifest', path: '/v2/{name}/manifests/{reference}', methods: ['GET', 'HEAD', 'PUT', 'DELETE'] },
  { id: 'blob', path: '/v2/{name}/blobs/{digest}', methods: ['GET', 'HEAD', 'DELETE'] },
  { id: 'upload', path: '/v2/{name}/blobs/uploads/', methods: ['POST'] },
  { id: 'upload-session', path: '/v2/{name}/blobs/uploads/{uuid}', methods: ['GET', 'PATCH', 'PUT', 'DELETE'] },
  { id: 'tags', path: '/v2/{name}/tags/list', methods: ['GET'] },
  { id: 'referrers', path: '/v2/{name}/referrers/{digest}', methods: ['GET'] },
  { id: 'conversions', path: '/boxproxy/v1/conversions', methods: ['GET', 'POST'] },
  { id: 'conversion', path: '/boxproxy/v1/conversions/{digest}', methods: ['GET'] },
  { id: 'signing-key', path: '/boxproxy/v1/signing-key', methods: ['GET'] },
  { id: 'metrics', path: '/metrics', methods: ['GET'] },
  { id: 'healthz', path: '/healthz', methods: ['GET'] },
  { id: 'readyz', path: '/readyz', methods: ['GET'] },
];
