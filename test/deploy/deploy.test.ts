import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseToml } from 'smol-toml';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { loadConfig, parseConfig } from '../../src/config/load.js';
import { ROUTES } from '../../src/http/routes.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function filesUnder(dir: string, extensions: readonly string[]): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path, extensions));
    else if (extensions.some((e) => entry.name.endsWith(e))) out.push(path);
  }
  return out.sort();
}

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec?: unknown;
  data?: Record<string, string>;
}

function k8sObjects(): K8sObject[] {
  return filesUnder(join(ROOT, 'deploy'), ['.yaml', '.yml']).flatMap((file) =>
    parseAllDocuments(readFileSync(file, 'utf8')).map((doc) => {
      assert.deepEqual(doc.errors, [], relative(ROOT, file));
      return doc.toJS() as K8sObject;
    }),
  );
}

function byKind<T>(kind: string): T {
  const found = k8sObjects().filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `one ${kind}`);
  return found[0] as T;
}

test('every config/*.yaml loads and validates through loadConfig', () => {
  const files = filesUnder(join(ROOT, 'config'), ['.yaml', '.yml']);
  assert.ok(files.length >= 2, 'default.yaml and container.yaml');
  for (const file of files) {
    const config = loadConfig(file);
    assert.ok(config.upstreams.length > 0, relative(ROOT, file));
  }
});

test('the container config listens on 0.0.0.0:5000 and stores in /data', () => {
  const config = loadConfig(join(ROOT, 'config/container.yaml'));
  assert.equal(config.listen, '0.0.0.0:5000');
  assert.equal(config.storage.path, '/data');
  assert.equal(config.conversion.gzip, 'igzip', 'the image installs isal');
  assert.equal(config.conversion.runtimes.build, 'never', 'the image bakes its runtimes; a non-root container cannot build them');
});

test('every deploy/ YAML document parses and is a Kubernetes object', () => {
  const objects = k8sObjects();
  assert.deepEqual(objects.map((o) => o.kind).sort(), ['ConfigMap', 'Deployment', 'PersistentVolumeClaim', 'Service']);
  for (const o of objects) {
    assert.equal(typeof o.apiVersion, 'string');
    assert.equal(typeof o.metadata.name, 'string');
  }
});

test('the ConfigMap carries a valid boxproxy config', () => {
  const cm = byKind<K8sObject>('ConfigMap');
  const text = cm.data?.['boxproxy.yaml'];
  assert.ok(text, 'data.boxproxy.yaml');
  const config = parseConfig(parseYaml(text), 'ConfigMap boxproxy');
  assert.equal(config.storage.path, '/data');
  assert.equal(config.listen, '0.0.0.0:5000');
  assert.equal(config.conversion.gzip, 'igzip', 'the image installs isal');
  assert.equal(config.conversion.runtimes.build, 'never', 'runtimes are baked into the image');
});

interface Probe {
  httpGet: { path: string; port: string | number };
}
interface Container {
  args: string[];
  ports: Array<{ name: string; containerPort: number }>;
  readinessProbe: Probe;
  livenessProbe: Probe;
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  volumeMounts: Array<{ name: string; mountPath: string }>;
}
interface Deployment {
  spec: {
    template: {
      spec: {
        securityContext: { runAsNonRoot: boolean };
        containers: Container[];
        volumes: Array<{ name: string; persistentVolumeClaim?: { claimName: string }; configMap?: { name: string } }>;
      };
    };
  };
}

test('the Deployment probes served routes, runs as non-root and mounts the PVC and ConfigMap', () => {
  const pod = byKind<Deployment>('Deployment').spec.template.spec;
  assert.equal(pod.securityContext.runAsNonRoot, true);
  const c = pod.containers[0] as Container;
  const served = new Set(ROUTES.filter((r) => r.methods.includes('GET')).map((r) => r.path));
  assert.equal(c.readinessProbe.httpGet.path, '/readyz');
  assert.equal(c.livenessProbe.httpGet.path, '/healthz');
  assert.ok(served.has('/readyz') && served.has('/healthz'));
  assert.deepEqual(c.ports.map((p) => p.containerPort), [5000]);
  assert.ok(c.resources.requests.memory && c.resources.limits.memory);
  const mounts = new Map(c.volumeMounts.map((m) => [m.name, m.mountPath]));
  assert.equal(mounts.get('data'), '/data');
  const pvc = byKind<K8sObject>('PersistentVolumeClaim');
  const cm = byKind<K8sObject>('ConfigMap');
  assert.equal(pod.volumes.find((v) => v.name === 'data')?.persistentVolumeClaim?.claimName, pvc.metadata.name);
  assert.equal(pod.volumes.find((v) => v.name === 'config')?.configMap?.name, cm.metadata.name);
  // The config file the container is told to read is the one the ConfigMap is mounted at.
  const configArg = c.args[c.args.indexOf('--config') + 1];
  assert.equal(configArg, mounts.get('config'));
});

test('containerd hosts.toml names the upstream server and a pull/resolve mirror host', () => {
  const doc = parseToml(readFileSync(join(ROOT, 'deploy/containerd/hosts.toml'), 'utf8')) as {
    server: string;
    host: Record<string, { capabilities: string[] }>;
  };
  assert.match(doc.server, /^https:\/\//);
  const hosts = Object.entries(doc.host);
  assert.equal(hosts.length, 1);
  const [url, host] = hosts[0] as [string, { capabilities: string[] }];
  assert.match(url, /^http:\/\/[^/]+:5000$/);
  assert.deepEqual(host.capabilities, ['pull', 'resolve']);
});

test('podman registries.conf mirrors each registry under a path prefix equal to an upstream name', () => {
  const doc = parseToml(readFileSync(join(ROOT, 'deploy/podman/registries.conf'), 'utf8')) as {
    registry: Array<{ prefix: string; location: string; mirror: Array<{ location: string }> }>;
  };
  const upstreams = new Set(loadConfig(join(ROOT, 'config/default.yaml')).upstreams.map((u) => u.name));
  assert.ok(doc.registry.length > 0);
  for (const r of doc.registry) {
    assert.ok(upstreams.has(r.prefix), `${r.prefix} is a configured upstream`);
    assert.equal(r.mirror.length, 1);
    assert.ok((r.mirror[0] as { location: string }).location.endsWith(`:5000/${r.prefix}`), r.prefix);
  }
});

test('docker daemon.json lists the proxy as a registry mirror', () => {
  const doc = JSON.parse(readFileSync(join(ROOT, 'deploy/docker/daemon.json'), 'utf8')) as { 'registry-mirrors': string[] };
  assert.equal(doc['registry-mirrors'].length, 1);
  assert.match(doc['registry-mirrors'][0] as string, /^http:\/\/[^/]+:5000$/);
});

test('the Dockerfile runs the container config as a non-root user with /data and port 5000', () => {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const env = /BOXPROXY_CONFIG=\/app\/(\S+)/.exec(text);
  assert.ok(env, 'BOXPROXY_CONFIG is set');
  assert.equal(loadConfig(join(ROOT, env[1] as string)).storage.path, '/data');
  assert.match(text, /^USER node$/m);
  assert.match(text, /^VOLUME \/data$/m);
  assert.match(text, /^EXPOSE 5000$/m);
  assert.match(text, /^HEALTHCHECK .*$/m);
  assert.deepEqual(
    [...text.matchAll(/^FROM \S+ AS (\S+)$/gm)].map((m) => m[1]),
    ['build', 'runtimes', 'runtime'],
    'build, Wasm runtimes and runtime stages',
  );
  assert.match(text, /^COPY --from=runtimes \/runtimes\/catalog \S+$/m, 'the runtime catalog is baked in');
  // The container config requires igzip: the runtime stage must install it.
  const runtimeStage = text.slice(text.search(/^FROM \S+ AS runtime$/m));
  assert.match(runtimeStage, /apt-get install -y --no-install-recommends isal\b/);
});

test('every deploy/ file is covered by a check above', () => {
  const files = filesUnder(join(ROOT, 'deploy'), ['']).map((f) => relative(join(ROOT, 'deploy'), f));
  const known = /^(kubernetes\/[a-z]+\.yaml|containerd\/hosts\.toml|podman\/registries\.conf|docker\/daemon\.json)$/;
  for (const f of files) assert.match(f, known);
});
