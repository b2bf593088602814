// deploy/kubernetes (the chart's rendering for its default values, test/deploy/chart.test.ts keeps
// it so): every object valid against its Kubernetes or Istio schema (kubernetes-models),
// and consistent with what gatehouse and deploy/istio expect. Ports, paths, flags and the drain time
// come from the code and the shipped config, so a change there fails here instead of in a cluster.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { ConfigMap, Service } from 'kubernetes-models/v1';
import type { Deployment } from 'kubernetes-models/apps/v1';
import type { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import type { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import type { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import type { PeerAuthentication } from '@kubernetes-models/istio/security.istio.io/v1beta1';
import type { DestinationRule } from '@kubernetes-models/istio/networking.istio.io/v1beta1';
import type { IContainer } from 'kubernetes-models/v1';
import { findPackageRoot } from '../../src/config/load.js';
import { DEV_ONLY_MARK } from '../../src/config/dev-only.js';
import { ADMIN_PATHS } from '../../src/admin/server.js';
import { NODE_FLAGS } from '../../bench/node-flags.js';
import { DEPLOY_ISTIO } from '../support/manifests.js';
import { SECRETS_DIR, parseShipped, secretFiles } from '../support/deployed-config.js';
import { validateObject } from '../support/k8s-models.js';
import type { K8sObject } from '../support/helm.js';

const ROOT = findPackageRoot();
const DIR = join(ROOT, 'deploy/kubernetes');

function yamlObjects(dir: string): K8sObject[] {
  const out: K8sObject[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
      const value = doc.toJS() as K8sObject | null;
      if (value !== null) out.push(value);
    }
  }
  return out;
}

const objects = yamlObjects(DIR);
function one(kind: string, name = 'gatehouse'): K8sObject {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name === name);
  assert.equal(found.length, 1, `one ${kind} ${name}`);
  return found[0]!;
}

const deployment = (one('Deployment') as unknown as Deployment);
const pod = deployment.spec!.template.spec!;
const podLabels = deployment.spec!.template.metadata!.labels!;
const main = pod.containers.find((c) => c.name === 'gatehouse')!;
const configMap = (one('ConfigMap', 'gatehouse-config') as unknown as ConfigMap);
const service = (one('Service') as unknown as Service);
// what selects gatehouse's pods of every track (stable, and a canary's): the Deployment's own
// selector adds its track, so two Deployments never claim each other's pods
const TRACK_LABEL = 'gatehouse.io/track';
const allTracks = Object.fromEntries(Object.entries(deployment.spec!.selector.matchLabels!).filter(([k]) => k !== TRACK_LABEL));
const env = (c: IContainer, name: string): string | undefined => c.env?.find((e) => e.name === name)?.value;

// The config file as the pod sees it: GATEHOUSE_CONFIG points into the ConfigMap's volume.
const configPath = env(main, 'GATEHOUSE_CONFIG')!;
const configMount = main.volumeMounts!.find((m) => configPath.startsWith(`${m.mountPath}/`))!;
const configText = configMap.data![configPath.slice(configMount.mountPath.length + 1)]!;

test('every document in deploy/kubernetes is an object its Kubernetes or Istio schema accepts, in the gatehouse namespace', () => {
  assert.ok(objects.length >= 10);
  for (const o of objects) {
    validateObject(o);
    assert.equal(o.metadata.namespace, 'gatehouse', `${o.kind} ${o.metadata.name}`);
  }
  // the validation has teeth: a port written as a string is refused
  const broken = structuredClone(deployment) as unknown as K8sObject & { spec: { template: { spec: { containers: { ports: { containerPort: unknown }[] }[] } } } };
  broken.spec.template.spec.containers[0]!.ports[0]!.containerPort = '9001';
  assert.throws(() => {
    validateObject(broken);
  }, /containerPort must be integer/);
});

test("the ConfigMap's gatehouse.yaml passes gatehouse's parser and --check, uses Redis and mounted secrets, and names no dev-only file", () => {
  assert.ok(!configText.includes(DEV_ONLY_MARK), 'main.ts refuses a config naming a *.dev-only.* file');
  const { parsed, files, check } = parseShipped(configText);
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.errors.map((e) => e.format()).join('\n'));
  assert.deepEqual(parsed.warnings.map((w) => w.format()), []);
  assert.deepEqual(files, []);
  assert.ok(check?.ok, check && !check.ok ? check.errors.join('\n') : '');
  const { config } = parsed;
  assert.equal(config.stores.kind, 'redis');
  assert.ok(config.stores.redis?.password && 'file' in config.stores.redis.password, 'the Redis password comes from a file');
  assert.ok(config.admin?.tokenFile, 'the admin API is on, its token from a file');
  assert.ok(config.admin.listen, 'on a listener of its own');
  // the check has teeth: a field gatehouse does not know fails the parse
  assert.equal(parseShipped(configText.replace('accessLog: true', 'accessLogs: true')).parsed.ok, false);
});

test('every secret file the config names is a key of a Secret mounted read-only at that path, and the README lists it', () => {
  const readme = readFileSync(join(DIR, 'README.md'), 'utf8');
  const keys = secretFiles(configText);
  assert.ok(keys.length >= 8);
  for (const key of keys) {
    const path = `${SECRETS_DIR}/${key}`;
    const mount = main.volumeMounts!.find((m) => path.startsWith(`${m.mountPath}/`));
    assert.ok(mount, `${path} is under a volume mount`);
    const secret = pod.volumes!.find((v) => v.name === mount.name)?.secret;
    assert.ok(secret?.secretName, `${mount.name} is a Secret volume`);
    const item = path.slice(mount.mountPath.length + 1);
    assert.match(readme, new RegExp(`\`${secret.secretName}\`[^\\n]*\`${item.replaceAll('.', '\\.')}\``), `README.md documents ${secret.secretName} key ${item}`);
  }
});

test('the containers run with the V8 flags of bench/node-flags.ts, as the Dockerfile does, and the initContainer checks the config', () => {
  const expected = ['node', ...NODE_FLAGS, 'dist/src/main.js'];
  assert.deepEqual(main.command, expected);
  assert.equal(main.args, undefined);
  const check = pod.initContainers?.find((c) => c.command?.includes('--check'));
  assert.deepEqual(check?.command, [...expected, '--check']);
  assert.equal(check.image, main.image);
  assert.deepEqual(check.volumeMounts, main.volumeMounts);
  assert.equal(env(check, 'GATEHOUSE_CONFIG'), configPath);
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1];
  assert.deepEqual(JSON.parse(entrypoint ?? 'null'), expected);
  assert.match(dockerfile, /^USER \d+/m, 'a numeric non-root user, for runAsNonRoot');
  // the runtime stage: findPackageRoot needs config/, and no dev-only key may ride along
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  assert.match(runtime, /^COPY .* \.\/config\//m, 'the image has a config/ directory (findPackageRoot)');
  assert.doesNotMatch(runtime, /^COPY (--from=build \/app\/)?config\/? /m, 'not the whole config/ (dev-only keys)');
  assert.ok(!runtime.includes(DEV_ONLY_MARK));
});

test('the image is Node 22 LTS as engines says, its base pinned by digest, and holds no bench, demo, sdk or test code', () => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const base = /^ARG NODE_IMAGE=(\S+)$/m.exec(dockerfile)?.[1] ?? '';
  assert.match(base, /^node:(\d+)(\.\d+\.\d+)?-bookworm-slim@sha256:[a-f0-9]{64}$/);
  // the digest's provenance and the one command that verifies it are written beside it
  assert.match(dockerfile, /docker buildx imagetools inspect node:\S+-bookworm-slim/);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string }; devDependencies: Record<string, string> };
  const major = /^>=(\d+)/.exec(pkg.engines.node)?.[1];
  assert.equal(/^node:(\d+)/.exec(base)?.[1], major, `the image's Node major is engines' (${pkg.engines.node})`);
  // the types the code is checked against, and the Node .ci/run installs, are the same major
  assert.equal(/^\^(\d+)\./.exec(pkg.devDependencies['@types/node'] ?? '')?.[1], major, '@types/node');
  assert.match(readFileSync(join(ROOT, '.ci/run'), 'utf8'), new RegExp(`"\\$\\(node_major\\)" != ${major ?? 'none'}\\b`), '.ci/run installs the same major');
  for (const line of dockerfile.split('\n').filter((l) => l.startsWith('FROM '))) assert.match(line, /^FROM \$\{NODE_IMAGE\}/, 'every stage on the pinned base');
  assert.doesNotMatch(dockerfile, /^COPY .*\b(bench|demo|sdk|test)\b/m);
  // what tsconfig.image.json compiles: src/ without its tests, benches and test helpers
  const files = execFileSync(join(ROOT, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.image.json', '--listFilesOnly'], { cwd: ROOT, encoding: 'utf8' })
    .split('\n').filter((f) => f.startsWith(ROOT) && !f.includes('/node_modules/'));
  assert.ok(files.some((f) => f.endsWith('/src/main.ts')));
  assert.deepEqual(files.filter((f) => /\/(bench|demo|sdk|test)\/|\.test\.ts$|\.bench\.ts$|test-support\.ts$/.test(f.slice(ROOT.length))), []);
});

test("the container ports are the config's listeners, and the probes hit the admin server's paths", () => {
  const { parsed } = parseShipped(configText);
  assert.ok(parsed.ok, 'the shipped config parses');
  const port = (name: string): number | undefined => main.ports?.find((p) => p.name === name)?.containerPort;
  assert.equal(port('grpc'), parsed.config.listen.grpc.port);
  assert.equal(port('admin'), parsed.config.listen.admin.port);
  // the admin API on its own port, so the scrape rule below does not open it
  assert.equal(port('admin-api'), parsed.config.admin?.listen?.port);
  assert.notEqual(port('admin-api'), port('admin'));
  const probes = { startupProbe: ADMIN_PATHS.live, livenessProbe: ADMIN_PATHS.live, readinessProbe: ADMIN_PATHS.ready };
  for (const [probe, path] of Object.entries(probes)) {
    const get = main[probe as keyof typeof probes]?.httpGet;
    assert.equal(get?.path, path, probe);
    assert.equal(get.port, 'admin', probe);
  }
  // prometheus scrapes the admin server's /metrics
  const annotations = deployment.spec!.template.metadata!.annotations!;
  assert.equal(annotations['prometheus.io/path'], ADMIN_PATHS.metrics);
  assert.equal(Number(annotations['prometheus.io/port']), parsed.config.listen.admin.port);
  assert.equal(annotations['prometheus.istio.io/merge-metrics'], 'false', 'or the sidecar injector moves the scrape to port 15020, which the NetworkPolicy closes');
});

test('terminationGracePeriodSeconds outlasts the preStop wait, the drain (shutdown.graceMs) and the security-events flush', () => {
  const { parsed } = parseShipped(configText);
  assert.ok(parsed.ok, 'the shipped config parses');
  const preStop = main.lifecycle?.preStop?.exec?.command?.join(' ') ?? '';
  const preStopMs = Number(/setTimeout\(\(\) => \{\}, (\d+)\)/.exec(preStop)?.[1]);
  assert.ok(preStopMs > 0 && preStopMs < parsed.config.shutdown.graceMs, `preStop waits ${preStopMs} ms`);
  const needMs = preStopMs + parsed.config.shutdown.graceMs + parsed.config.securityEvents.flushTimeoutMs;
  const graceMs = pod.terminationGracePeriodSeconds! * 1000;
  assert.ok(graceMs > needMs, `terminationGracePeriodSeconds ${graceMs} ms > ${needMs} ms`);
  // the sidecar drains at least as long, or it would cut gatehouse's last answers off
  const proxy = JSON.parse(deployment.spec!.template.metadata!.annotations!['proxy.istio.io/config'] ?? '{}') as { terminationDrainDuration?: string };
  assert.ok(parseInt(proxy.terminationDrainDuration ?? '0', 10) * 1000 >= needMs, 'terminationDrainDuration covers the drain');
  // readiness notices the drain well within it
  const readiness = main.readinessProbe!;
  assert.ok((readiness.periodSeconds ?? 10) * (readiness.failureThreshold ?? 3) * 1000 < parsed.config.shutdown.graceMs);
});

test('the pod is hardened: non-root, read-only root filesystem, no capabilities, RuntimeDefault seccomp, read-only mounts', () => {
  assert.equal(pod.securityContext?.runAsNonRoot, true);
  assert.equal(pod.securityContext.seccompProfile?.type, 'RuntimeDefault');
  assert.equal(pod.automountServiceAccountToken, false);
  for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
    const sc = c.securityContext;
    assert.equal(sc?.runAsNonRoot, true, c.name);
    assert.equal(sc.readOnlyRootFilesystem, true, c.name);
    assert.equal(sc.allowPrivilegeEscalation, false, c.name);
    assert.deepEqual(sc.capabilities?.drop, ['ALL'], c.name);
    assert.equal(sc.capabilities.add, undefined, c.name);
    assert.equal(sc.seccompProfile?.type, 'RuntimeDefault', c.name);
    for (const m of c.volumeMounts ?? []) assert.equal(m.readOnly, true, `${c.name} ${m.name}`);
    assert.ok(c.resources?.requests?.cpu && c.resources.limits?.memory, `${c.name} has requests and a memory limit`);
  }
});

test('replicas spread over nodes and zones, and a disruption takes at most one', () => {
  // the HPA owns the replica count (a fixed one in the Deployment would fight it on every apply)
  const hpa = one('HorizontalPodAutoscaler') as unknown as HorizontalPodAutoscaler;
  assert.equal(deployment.spec!.replicas, undefined);
  assert.ok((hpa.spec!.minReplicas ?? 1) >= 2);
  assert.equal(hpa.spec!.scaleTargetRef.name, deployment.metadata!.name);
  const keys = (pod.topologySpreadConstraints ?? []).map((t) => t.topologyKey);
  assert.ok(keys.includes('kubernetes.io/hostname') && keys.includes('topology.kubernetes.io/zone'), keys.join());
  for (const t of pod.topologySpreadConstraints ?? []) assert.deepEqual(t.labelSelector?.matchLabels, allTracks);
  const pdb = (one('PodDisruptionBudget') as unknown as PodDisruptionBudget);
  assert.deepEqual(pdb.spec?.selector?.matchLabels, allTracks);
  assert.equal(deployment.spec!.selector.matchLabels![TRACK_LABEL], 'stable');
  assert.equal(pdb.spec!.maxUnavailable, 1);
});

// deploy/istio: the cluster name, authority and gateway selector the EnvoyFilters use
function envoyFilters(): { namespace: string; selector: Record<string, string>; clusterName: string; authority: string }[] {
  return yamlObjects(DEPLOY_ISTIO)
    .filter((o) => o.kind === 'EnvoyFilter')
    .map((o) => {
      const spec = o.spec as { workloadSelector: { labels: Record<string, string> }; configPatches: { patch: { value: { typed_config: Record<string, { envoy_grpc: { cluster_name: string; authority: string } }> } } }[] };
      const typed = spec.configPatches[0]!.patch.value.typed_config;
      return { namespace: o.metadata.namespace!, selector: spec.workloadSelector.labels, clusterName: typed.grpc_service!.envoy_grpc.cluster_name, authority: typed.grpc_service!.envoy_grpc.authority };
    });
}

test("the Service is the EnvoyFilters' cluster: its name, namespace and grpc port, HTTP/2 by appProtocol", () => {
  const filters = envoyFilters();
  assert.equal(filters.length, 2);
  const host = `${service.metadata!.name}.${service.metadata!.namespace}.svc.cluster.local`;
  const grpc = service.spec?.ports?.find((p) => p.name === 'grpc');
  assert.equal(grpc?.appProtocol, 'grpc', 'Istio makes the outbound cluster HTTP/2 from appProtocol grpc');
  assert.equal(grpc.targetPort, 'grpc');
  for (const f of filters) {
    assert.equal(f.clusterName, `outbound|${grpc.port}||${host}`);
    assert.equal(f.authority, host);
  }
  assert.deepEqual(service.spec!.selector, allTracks);
  for (const [k, v] of Object.entries(service.spec!.selector!)) assert.equal(podLabels[k], v);
  assert.ok(service.spec!.ports!.some((p) => p.name === 'admin' && p.targetPort === 'admin'));
  const rule = (one('DestinationRule') as unknown as DestinationRule);
  assert.equal(rule.spec?.host, host);
  assert.equal(rule.spec.trafficPolicy?.portLevelSettings?.find((s) => s.port?.number === grpc.port)?.tls?.mode, 'ISTIO_MUTUAL');
  const peer = (one('PeerAuthentication') as unknown as PeerAuthentication);
  assert.equal(peer.spec?.mtls?.mode, 'STRICT');
});

test('the NetworkPolicy admits gRPC only from the EnvoyFilters\' gateway pods and the admin port only from monitoring', () => {
  const policy = (one('NetworkPolicy') as unknown as NetworkPolicy);
  assert.deepEqual(policy.spec?.podSelector.matchLabels, allTracks);
  assert.deepEqual(policy.spec!.policyTypes, ['Ingress']);
  const grpcPort = main.ports!.find((p) => p.name === 'grpc')!.containerPort;
  const adminPort = main.ports!.find((p) => p.name === 'admin')!.containerPort;
  const rules = policy.spec!.ingress ?? [];
  assert.equal(rules.length, 2);
  for (const rule of rules) assert.equal(rule.ports?.length, 1, 'one port per rule');
  const grpcRule = rules.find((r) => r.ports?.[0]?.port === grpcPort);
  for (const f of envoyFilters()) {
    assert.deepEqual(grpcRule?.from, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': f.namespace } }, podSelector: { matchLabels: f.selector } }]);
  }
  const adminRule = rules.find((r) => r.ports?.[0]?.port === adminPort);
  assert.deepEqual(adminRule?.from, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
});
