// deploy/helm/gatehouse rendered for its defaults and each documented scenario (scenarios/*.yaml)
// with our Helm-compatible renderer (test/support/helm.ts): every object valid against its schema,
// every Envoy typed_config decoded strictly by its official proto, the config gatehouse's own
// loader accepts, the gateway identity consistent across the objects that name it, and the
// checked-in renderings (deploy/kubernetes, deploy/istio) and values.schema.json not drifted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { JsonValue } from '@bufbuild/protobuf';
import type { ExternalProcessor } from '../../src/gen/envoy/extensions/filters/http/ext_proc/v3/ext_proc_pb.js';
import { CHART_DIR, SCENARIOS_DIR, chartValues, checkedInRenderings, expectedValuesSchema, renderChart, skipWithoutGo, yamlObjects, type K8sObject } from '../support/helm.js';
import { validateObject } from '../support/k8s-models.js';
import { decodeTypedConfig } from '../support/envoy-descriptors.js';
import { routeResponseHeadersToRemove } from '../support/manifests.js';
import { parseShipped } from '../support/deployed-config.js';

const skip = skipWithoutGo();
const SCENARIOS = ['defaults', ...readdirSync(SCENARIOS_DIR).filter((f) => f.endsWith('.yaml')).map((f) => f.slice(0, -'.yaml'.length)).sort()];
const filesOf = (scenario: string): string[] => (scenario === 'defaults' ? [] : [join(SCENARIOS_DIR, `${scenario}.yaml`)]);

interface Patch { applyTo: string; patch: { value: Record<string, unknown> } }
const patchesOf = (o: K8sObject): Patch[] => (o.spec as { configPatches: Patch[] }).configPatches;

/** Every typed_config an EnvoyFilter carries: filter configs and per-route configs. */
function typedConfigsOf(o: K8sObject): Record<string, JsonValue>[] {
  const out: Record<string, JsonValue>[] = [];
  for (const p of patchesOf(o)) {
    const v = p.patch.value as { typed_config?: Record<string, JsonValue>; typed_per_filter_config?: Record<string, Record<string, JsonValue>> };
    if (v.typed_config) out.push(v.typed_config);
    for (const c of Object.values(v.typed_per_filter_config ?? {})) out.push(c);
  }
  return out;
}

function rendered(scenario: string): { objects: K8sObject[]; values: Record<string, unknown> } {
  return { objects: yamlObjects(renderChart(filesOf(scenario))), values: chartValues(filesOf(scenario)) };
}
const find = (objects: K8sObject[], kind: string): K8sObject[] => objects.filter((o) => o.kind === kind);

test('the documented scenarios are the six the README lists', { skip }, () => {
  assert.deepEqual(SCENARIOS, ['defaults', 'ext-authz', 'istio-gateway', 'legacy-ingressgateway', 'no-istio', 'redis-cluster', 'redis-sentinel']);
  const readme = readFileSync(join(CHART_DIR, 'README.md'), 'utf8');
  for (const s of SCENARIOS.slice(1)) assert.ok(readme.includes(`scenarios/${s}.yaml`), `README.md documents scenarios/${s}.yaml`);
});

for (const scenario of SCENARIOS) {
  test(`${scenario}: every object validates, every typed_config decodes strictly, the config passes gatehouse's loader and --check`, { skip }, () => {
    const { objects, values } = rendered(scenario);
    assert.ok(objects.length >= 6);
    for (const o of objects) validateObject(o);
    for (const filter of find(objects, 'EnvoyFilter')) for (const c of typedConfigsOf(filter)) decodeTypedConfig(c);

    const [config, ...more] = find(objects, 'ConfigMap').filter((o) => o.metadata.name.endsWith('-config'));
    assert.equal(more.length, 0);
    const clients = find(objects, 'ConfigMap').find((o) => o.metadata.name.endsWith('-clients'));
    const text = (config!.data as Record<string, string>)['gatehouse.yaml']!;
    const { parsed, files, check } = parseShipped(text, clients ? (clients.data as Record<string, string>)['clients.yaml'] : undefined);
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.errors.map((e) => e.format()).join('\n'));
    assert.deepEqual(parsed.warnings.map((w) => w.format()), []);
    assert.deepEqual(files, []);
    assert.ok(check?.ok, check && !check.ok ? check.errors.join('\n') : '');

    // one value sets Envoy's wait and gatehouse's knowledge of it
    const timeoutMs = values['messageTimeoutMs'] as number;
    assert.equal(parsed.config.envoy.messageTimeoutMs, timeoutMs);
    const redis = values['redis'] as { mode: string };
    assert.equal(parsed.config.stores.kind, redis.mode === 'none' ? 'memory' : 'redis');
    if (redis.mode !== 'none') assert.equal(parsed.config.stores.redis?.mode, redis.mode);

    const mode = (values['istio'] as { mode: string }).mode;
    const gateway = values['gateway'] as { namespace: string; selector: Record<string, string>; serviceAccount: string };
    const filters = find(objects, 'EnvoyFilter');
    for (const f of filters) {
      assert.equal(f.metadata.namespace, gateway.namespace, 'EnvoyFilters live in the gateway namespace');
      assert.deepEqual((f.spec as { workloadSelector: { labels: unknown } }).workloadSelector.labels, gateway.selector);
    }
    if (mode === 'extProc') {
      const extProc = filters.flatMap(typedConfigsOf).filter((c) => c['@type'] === 'type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor');
      assert.equal(extProc.length, 1);
      const decoded = decodeTypedConfig(extProc[0]!) as unknown as ExternalProcessor;
      assert.equal(decoded.failureModeAllow, false);
      assert.equal(Number(decoded.messageTimeout?.seconds ?? 0n) * 1000 + (decoded.messageTimeout?.nanos ?? 0) / 1e6, timeoutMs);
    }
    if (mode === 'none') assert.equal(filters.length + find(objects, 'AuthorizationPolicy').filter((o) => o.metadata.namespace === gateway.namespace).length, 0);

    // the gateway identity: NetworkPolicy by labels, AuthorizationPolicy by mesh principal
    const policy = find(objects, 'NetworkPolicy')[0]?.spec as { ingress: { from: unknown[] }[] } | undefined;
    assert.deepEqual(policy?.ingress[0]?.from, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': gateway.namespace } }, podSelector: { matchLabels: gateway.selector } }]);
    const allow = find(objects, 'AuthorizationPolicy').find((o) => (o.spec as { action: string }).action === 'ALLOW');
    if ((values['istio'] as { authorizationPolicy: { enabled: boolean } }).authorizationPolicy.enabled) {
      assert.deepEqual((allow?.spec as { rules: { from?: { source: { principals: string[] } }[] }[] }).rules[0]?.from?.[0]?.source.principals, [`cluster.local/ns/${gateway.namespace}/sa/${gateway.serviceAccount}`]);
    }

    // the Service is kept in gateways' filtered cluster lists and is HTTP/2
    const service = find(objects, 'Service')[0]!;
    assert.equal(service.metadata.annotations?.['networking.istio.io/always-include-in-gateways'], 'true');
    assert.equal((service.spec as { ports: { name: string; appProtocol: string }[] }).ports.find((p) => p.name === 'grpc')?.appProtocol, 'grpc');
  });
}

test('the Envoy defenses patch decodes as an HttpConnectionManager and a misspelt field is refused', { skip }, () => {
  const filter = find(rendered('defaults').objects, 'EnvoyFilter')[0]!;
  const hcm = patchesOf(filter).find((p) => p.applyTo === 'NETWORK_FILTER')!.patch.value['typed_config'] as Record<string, JsonValue>;
  const decoded = decodeTypedConfig(hcm) as unknown as { normalizePath: boolean; mergeSlashes: boolean; pathWithEscapedSlashesAction: number; commonHttpProtocolOptions: { headersWithUnderscoresAction: number } };
  assert.equal(decoded.normalizePath, true);
  assert.equal(decoded.mergeSlashes, true);
  assert.equal(decoded.pathWithEscapedSlashesAction, 2, 'REJECT_REQUEST');
  assert.equal(decoded.commonHttpProtocolOptions.headersWithUnderscoresAction, 1, 'REJECT_REQUEST');
  // the decode has teeth: headers_with_underscores_action is not an HCM field (it is under common_http_protocol_options)
  assert.throws(() => decodeTypedConfig({ ...hcm, headers_with_underscores_action: 'REJECT_REQUEST' }), /headers_with_underscores_action/);
});

test('ext_authz: an AuthorizationPolicy CUSTOM on the gateway, body routes forwarded whole as bytes, NOTES give the meshConfig provider', { skip }, () => {
  const { objects, values } = rendered('ext-authz');
  const gateway = values['gateway'] as { namespace: string; selector: Record<string, string> };
  const custom = find(objects, 'AuthorizationPolicy').find((o) => (o.spec as { action: string }).action === 'CUSTOM')!;
  assert.equal(custom.metadata.namespace, gateway.namespace);
  assert.deepEqual(custom.spec, { selector: { matchLabels: gateway.selector }, action: 'CUSTOM', provider: { name: 'gatehouse' }, rules: [{}] });
  const perRoute = find(objects, 'EnvoyFilter').flatMap(patchesOf).filter((p) => p.applyTo === 'HTTP_ROUTE');
  assert.equal(perRoute.length, 3);
  for (const p of perRoute) {
    const config = (p.patch.value['typed_per_filter_config'] as Record<string, Record<string, JsonValue>>)['envoy.filters.http.ext_authz']!;
    const decoded = decodeTypedConfig(config) as unknown as { override: { case: string; value: { withRequestBody: { packAsBytes: boolean; allowPartialMessage: boolean; maxRequestBytes: number } } } };
    assert.equal(decoded.override.case, 'checkSettings');
    const body = decoded.override.value.withRequestBody;
    assert.equal(body.packAsBytes, true, 'a signature covers bytes');
    assert.equal(body.allowPartialMessage, false, 'never a truncated body');
    assert.equal(body.maxRequestBytes, 65536);
  }
  const notes = renderChart(filesOf('ext-authz'), { notes: true });
  assert.match(notes, /envoyExtAuthzGrpc:\n\s+service: gatehouse\.gatehouse\.svc\.cluster\.local\n\s+port: 9001\n\s+timeout: 0\.250s\n\s+failOpen: false/);
  assert.equal(find(objects, 'ConfigMap').length, 1);
});

test('ext_authz: the route configuration removes gatehouse\'s headers from upstream responses, decoded strictly as a RouteConfiguration, the same names as deploy/istio', { skip }, () => {
  const patches = find(rendered('ext-authz').objects, 'EnvoyFilter').flatMap(patchesOf).filter((p) => p.applyTo === 'ROUTE_CONFIGURATION');
  assert.equal(patches.length, 1);
  const value = patches[0]!.patch.value as Record<string, JsonValue>;
  const asRouteConfiguration = (fields: Record<string, JsonValue>) => decodeTypedConfig({ '@type': 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration', ...fields }) as unknown as { responseHeadersToRemove: string[] };
  const decoded = asRouteConfiguration(value);
  assert.deepEqual([...decoded.responseHeadersToRemove].sort(), [...routeResponseHeadersToRemove('envoyfilter-ext-authz.yaml')].sort());
  // the decode has teeth: a misspelt field is refused
  assert.throws(() => asRouteConfiguration({ response_header_to_remove: ['x-gatehouse-reason'] }), /response_header_to_remove/);
  // ext_proc needs none: gatehouse removes them itself
  assert.equal(find(rendered('defaults').objects, 'EnvoyFilter').flatMap(patchesOf).filter((p) => p.applyTo === 'ROUTE_CONFIGURATION').length, 0);
});

test('NOTES.txt tells how to check that the ext_proc filter is in the gateway config', { skip }, () => {
  const notes = renderChart([], { notes: true });
  assert.match(notes, /istioctl proxy-config listener "\$POD" -n istio-ingress -o json \| grep -c envoy\.filters\.http\.ext_proc/);
  assert.match(notes, /get pod -l istio=ingress,? /);
});

test('terminationGracePeriodSeconds follows shutdown.graceMs, preStop and the flush', { skip }, () => {
  const deployment = find(rendered('defaults').objects, 'Deployment')[0]!;
  const grace = (deployment.spec as { template: { spec: { terminationGracePeriodSeconds: number } } }).template.spec.terminationGracePeriodSeconds;
  assert.equal(grace, 5 + 22 + 8);
});

test('a bad value is refused with the value named: Redis Cluster without nodes, an unknown istio.mode', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-chart-'));
  try {
    writeFileSync(`${dir}/a.yaml`, 'redis: { mode: cluster }\n');
    assert.throws(() => renderChart([`${dir}/a.yaml`]), /redis\.cluster\.nodes/);
    writeFileSync(`${dir}/b.yaml`, 'istio: { mode: extproc }\n');
    assert.throws(() => renderChart([`${dir}/b.yaml`]), /istio\.mode "extproc"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a canary is a second Deployment with the new image behind the same Service, each Deployment selecting only its track', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-chart-'));
  try {
    writeFileSync(join(dir, 'canary.yaml'), 'canary: { enabled: true, replicas: 1, image: { tag: "0.2.0" } }\n');
    const objects = yamlObjects(renderChart([join(dir, 'canary.yaml')]));
    for (const o of objects) validateObject(o);
    type Dep = { metadata: { name: string }; spec: { replicas?: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: { containers: { image: string }[] } } } };
    const deployments = find(objects, 'Deployment') as unknown as Dep[];
    assert.equal(deployments.length, 2);
    const [stable, canary] = deployments as [Dep, Dep];
    assert.equal(canary.metadata.name, 'gatehouse-canary');
    assert.equal(canary.spec.replicas, 1);
    assert.equal(canary.spec.template.spec.containers[0]!.image, 'registry.example.com/gatehouse:0.2.0');
    assert.equal(stable.spec.template.spec.containers[0]!.image, 'registry.example.com/gatehouse:0.1.0');
    assert.equal(canary.spec.template.metadata.labels['version'], '0.2.0');
    const serviceSelector = (find(objects, 'Service')[0]!.spec as { selector: Record<string, string> }).selector;
    for (const d of [stable, canary]) {
      const labels = d.spec.template.metadata.labels;
      for (const [k, v] of Object.entries(serviceSelector)) assert.equal(labels[k], v, `the Service selects ${d.metadata.name}'s pods`);
      for (const [k, v] of Object.entries(d.spec.selector.matchLabels)) assert.equal(labels[k], v);
    }
    assert.notEqual(stable.spec.selector.matchLabels['gatehouse.io/track'], canary.spec.selector.matchLabels['gatehouse.io/track'], 'neither Deployment claims the other\'s pods');
    writeFileSync(join(dir, 'untagged.yaml'), 'canary: { enabled: true }\n');
    assert.throws(() => renderChart([join(dir, 'untagged.yaml')]), /canary\.image\.tag or canary\.image\.digest is required/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('canary.target: the DestinationRule has stable and canary subsets by track, the ext_proc filter calls the chosen one; a target that cannot work is refused', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-chart-'));
  try {
    const render = (yaml: string): K8sObject[] => {
      writeFileSync(join(dir, 'v.yaml'), yaml);
      return yamlObjects(renderChart([join(dir, 'v.yaml')]));
    };
    const clusterOf = (objects: K8sObject[]): string => {
      const typed = find(objects, 'EnvoyFilter').flatMap(patchesOf).find((p) => p.applyTo === 'HTTP_FILTER')!.patch.value['typed_config'] as { grpc_service: { envoy_grpc: { cluster_name: string } } };
      return typed.grpc_service.envoy_grpc.cluster_name;
    };
    const shared = render('canary: { enabled: true, image: { tag: "0.2.0" } }\n');
    for (const o of shared) validateObject(o);
    assert.equal(clusterOf(shared), 'outbound|9001||gatehouse.gatehouse.svc.cluster.local', 'all: every endpoint');
    const subsets = (find(shared, 'DestinationRule')[0]!.spec as { subsets: { name: string; labels: Record<string, string> }[] }).subsets;
    assert.deepEqual(subsets, [{ name: 'stable', labels: { 'gatehouse.io/track': 'stable' } }, { name: 'canary', labels: { 'gatehouse.io/track': 'canary' } }]);
    // each subset's labels are exactly one Deployment's pods
    for (const subset of subsets) {
      const matching = (find(shared, 'Deployment') as unknown as { spec: { template: { metadata: { labels: Record<string, string> } } } }[])
        .filter((d) => Object.entries(subset.labels).every(([k, v]) => d.spec.template.metadata.labels[k] === v));
      assert.equal(matching.length, 1, subset.name);
    }
    const switched = render('canary: { enabled: true, target: canary, image: { tag: "0.2.0" } }\n');
    for (const o of switched) validateObject(o);
    assert.equal(clusterOf(switched), 'outbound|9001|canary|gatehouse.gatehouse.svc.cluster.local');
    assert.equal(clusterOf(render('canary: { enabled: true, target: stable, image: { tag: "0.2.0" } }\n')), 'outbound|9001|stable|gatehouse.gatehouse.svc.cluster.local');
    assert.equal((find(render('{}\n'), 'DestinationRule')[0]!.spec as { subsets?: unknown }).subsets, undefined, 'no canary, no subsets');
    assert.throws(() => render('canary: { target: canary }\n'), /canary\.target "canary" needs canary\.enabled/);
    assert.throws(() => render('canary: { enabled: true, target: canary, image: { tag: "0.2.0" } }\nistio: { mode: extAuthz }\n'), /needs istio\.mode extProc/);
    assert.throws(() => render('canary: { enabled: true, target: stable, image: { tag: "0.2.0" } }\nistio: { destinationRule: { enabled: false } }\n'), /needs istio\.destinationRule\.enabled/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the admin API port is closed by default and opened only to the namespaces and principals named', { skip }, () => {
  type Rule = { ports: { port: number }[]; from: unknown[] };
  const closed = yamlObjects(renderChart());
  const policyRules = (objects: K8sObject[]): Rule[] => (find(objects, 'NetworkPolicy')[0]!.spec as { ingress: Rule[] }).ingress;
  assert.equal(policyRules(closed).filter((r) => r.ports.some((p) => p.port === 9003)).length, 0);
  const allowRules = (objects: K8sObject[]): { to: { operation: { ports: string[] } }[]; from?: { source: { principals: string[] } }[] }[] =>
    (find(objects, 'AuthorizationPolicy').find((o) => o.metadata.name === 'gatehouse-grpc')!.spec as { rules: never[] }).rules;
  assert.ok(!allowRules(closed).some((r) => r.to[0]!.operation.ports.includes('9003')));
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-chart-'));
  try {
    writeFileSync(join(dir, 'ops.yaml'), 'networkPolicy: { adminApiNamespaces: [ops] }\nistio: { authorizationPolicy: { adminApiPrincipals: [cluster.local/ns/ops/sa/admin-tool] } }\n');
    const open = yamlObjects(renderChart([join(dir, 'ops.yaml')]));
    for (const o of open) validateObject(o);
    assert.deepEqual(policyRules(open).find((r) => r.ports.some((p) => p.port === 9003))?.from, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ops' } } }]);
    assert.deepEqual(allowRules(open).find((r) => r.to[0]!.operation.ports.includes('9003'))?.from, [{ source: { principals: ['cluster.local/ns/ops/sa/admin-tool'] } }]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('values.schema.json embeds config/gatehouse.schema.json (regenerate: npx tsx test/support/helm.ts --write) and refuses a bad config', () => {
  const committed = JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8')) as unknown;
  assert.ok(isDeepStrictEqual(committed, expectedValuesSchema()), 'values.schema.json drifted from config/gatehouse.schema.json');
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  const validate = ajv.compile(committed as object);
  for (const scenario of SCENARIOS) assert.ok(validate(chartValues(filesOf(scenario))), `${scenario}: ${JSON.stringify(validate.errors)}`);
  const bad = chartValues();
  (bad['config'] as Record<string, unknown>)['unmatched'] = 'allow';
  assert.equal(validate(bad), false);
  assert.match(JSON.stringify(validate.errors), /\/config\/unmatched/);
  assert.equal(validate({ ...chartValues(), gatway: {} }), false, 'a misspelt top-level key is refused');
});

test('deploy/kubernetes/gatehouse.yaml and deploy/istio/envoyfilter-ext-proc.yaml are the chart rendered with its defaults (regenerate: npx tsx test/support/helm.ts --write)', { skip }, () => {
  for (const [file, text] of checkedInRenderings()) assert.equal(readFileSync(file, 'utf8'), text, `${file} drifted from the chart`);
});
