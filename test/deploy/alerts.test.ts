// The chart's alerts and dashboard, checked against Prometheus' own tools and the real service:
// `promtool check rules` and `promtool test rules` (test/deploy/alerts/rules.test.yaml fires and
// silences each alert) on the PrometheusRule exactly as rendered, a runbook in docs/operations.md
// for each alert, every metric an alert or a dashboard panel names present in the /metrics of a
// gatehouse started here, and the Alertmanager example accepted by `amtool check-config`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { findPackageRoot } from '../../src/config/load.js';
import { parseConfig } from '../support/config.js';
import { startGatehouse } from '../../src/gatehouse.js';
import { ADMIN_PATHS } from '../../src/admin/server.js';
import { METRIC } from '../../src/telemetry/metric-names.js';
import { CHART_DIR, SCENARIOS_DIR, renderChart, skipWithoutGo, yamlObjects } from '../support/helm.js';
import { AMTOOL, PROMTOOL, skipWithoutAmtool, skipWithoutPromtool } from '../support/promtool.js';

const ROOT = findPackageRoot();
const skip = skipWithoutGo() || skipWithoutPromtool();

/** Metrics the alerts and dashboard read that other exporters provide, with who provides them. */
const EXTERNAL_METRICS: Record<string, string> = {
  istio_requests_total: "the gateway's Envoy (Istio standard metrics)",
  kube_pod_container_status_restarts_total: 'kube-state-metrics',
};

interface Rule { alert?: string; expr: string; annotations?: Record<string, string> }

function renderedRules(): { groups: { name: string; rules: Rule[] }[] } {
  const objects = yamlObjects(renderChart([join(SCENARIOS_DIR, 'istio-gateway.yaml')]));
  const rule = objects.find((o) => o.kind === 'PrometheusRule');
  assert.ok(rule, 'the istio-gateway scenario renders a PrometheusRule');
  return rule.spec as { groups: { name: string; rules: Rule[] }[] };
}

function promtool(args: string[]): { ok: boolean; out: string } {
  try {
    return { ok: true, out: execFileSync(PROMTOOL, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** Runs promtool on the rendered rules in a temp dir: check rules, then the unit tests (with this text). */
function checkRules(unitTests: string): { check: { ok: boolean; out: string }; test: { ok: boolean; out: string } } {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-rules-'));
  try {
    const rules = join(dir, 'rules.yaml');
    writeFileSync(rules, stringify(renderedRules()));
    const tests = join(dir, 'rules.test.yaml');
    writeFileSync(tests, unitTests.replace('rule_files: [RULES_FILE]', `rule_files: [${JSON.stringify(rules)}]`));
    return { check: promtool(['check', 'rules', rules]), test: promtool(['test', 'rules', tests]) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const UNIT_TESTS = readFileSync(join(ROOT, 'test/deploy/alerts/rules.test.yaml'), 'utf8');

test('promtool check rules and promtool test rules pass on the rendered PrometheusRule', { skip }, () => {
  const { check, test: unit } = checkRules(UNIT_TESTS);
  assert.ok(check.ok, check.out);
  assert.match(check.out, /SUCCESS: 12 rules found/);
  assert.ok(unit.ok, unit.out);
  // the unit tests have teeth: a wrong expectation fails them
  const broken = checkRules(UNIT_TESTS.replace('for 20% of requests', 'for 21% of requests'));
  assert.equal(broken.test.ok, false);
});

test('every alert fires in a unit test and stays silent in another, and has a runbook in docs/operations.md', { skip }, () => {
  const operations = readFileSync(join(ROOT, 'docs/operations.md'), 'utf8');
  const alerts = renderedRules().groups.flatMap((g) => g.rules).filter((r) => r.alert !== undefined);
  assert.deepEqual(alerts.map((a) => a.alert).sort(), [
    'GatehouseBreakerOpen', 'GatehouseConfigReloadFailed', 'GatehouseDenialSpike', 'GatehouseDependencyErrors',
    'GatehouseLatencyNearBudget', 'GatehouseNoStreams', 'GatehousePodRestarts', 'GatehouseRouteNotFoundSpike',
    'GatehouseSecurityEventBacklog', 'GatehouseSecurityEventsDropped', 'GatehouseStoreDown', 'GatehouseUserApiErrors',
  ]);
  for (const { alert, annotations } of alerts) {
    const anchor = `runbook-${alert!.toLowerCase()}`;
    assert.ok(annotations?.['runbook_url']?.endsWith(`docs/operations.md#${anchor}`), `${alert} links its runbook`);
    assert.ok(operations.includes(`<a id="${anchor}"></a>`), `docs/operations.md has the runbook ${anchor}`);
    const fires = new RegExp(`alertname: ${alert}\\n\\s+eval_time: \\w+\\n\\s+exp_alerts:\\n\\s+- exp_labels`);
    const silent = new RegExp(`alertname: ${alert}\\n\\s+eval_time: \\w+\\n\\s+exp_alerts: \\[\\]`);
    assert.match(UNIT_TESTS, fires, `${alert} fires in a unit test`);
    assert.match(UNIT_TESTS, silent, `${alert} stays silent in a unit test`);
  }
});

/** Metric names a PromQL expression reads (identifiers before a selector or range, or bare in a function). */
function metricNames(expr: string): string[] {
  const names = new Set<string>();
  for (const m of expr.matchAll(/\b([a-z_:][a-z0-9_:]*)\s*(?=\{|\[)/g)) names.add(m[1]!);
  for (const m of expr.matchAll(/\b((?:gatehouse|nodejs|process|istio|kube)_[a-z0-9_]+)\b/g)) names.add(m[1]!);
  return [...names].filter((n) => !['by', 'without', 'on', 'ignoring', 'group_left', 'group_right'].includes(n));
}

/** Series names of an exposition: each family's name, with _bucket/_sum/_count for histograms. */
function exposedNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const m of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(name + s);
  }
  return names;
}

test('every metric an alert or a dashboard panel reads is in the /metrics of a running gatehouse (or a named exporter\'s)', { skip }, async () => {
  const parsed = parseConfig('listen: { grpc: "127.0.0.1:0", admin: "127.0.0.1:0" }\nroutes:\n  - id: api\n    match: { path: { prefix: / } }\n', 'alerts-test.yaml');
  assert.ok(parsed.ok);
  const gatehouse = await startGatehouse({ config: parsed.config, runtimeMetrics: true, logDestination: { write: () => undefined } });
  let exposition: string;
  try {
    const res = await fetch(`http://127.0.0.1:${gatehouse.adminPort}${ADMIN_PATHS.metrics}`);
    assert.equal(res.status, 200);
    exposition = await res.text();
  } finally {
    await gatehouse.stop(100);
  }
  const exposed = exposedNames(exposition);
  const dashboard = JSON.parse(readFileSync(join(CHART_DIR, 'dashboards/gatehouse.json'), 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[] };
  const uses: [string, string][] = [
    ...renderedRules().groups.flatMap((g) => g.rules).map((r): [string, string] => [`alert ${r.alert}`, r.expr]),
    ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t): [string, string] => [`panel "${p.title}"`, t.expr])),
  ];
  assert.ok(uses.length > 25);
  let checked = 0;
  for (const [where, expr] of uses) {
    const names = metricNames(expr);
    assert.ok(names.length > 0, `${where}: reads some metric`);
    for (const name of names) {
      if (name in EXTERNAL_METRICS) continue;
      assert.ok(exposed.has(name), `${where} reads ${name}, which gatehouse's /metrics does not have`);
      checked++;
    }
  }
  assert.ok(checked > 25);
  // and every family gatehouse defines is there, so a panel on any of them has data to read
  for (const name of Object.values(METRIC)) assert.ok(exposed.has(name), `${name} (METRIC) is not in /metrics`);
  // the check has teeth: a misspelt metric is not exposed
  assert.equal(exposed.has('gatehouse_denial_total'), false);
});

test('the Alertmanager example routing gatehouse alerts to Slack passes amtool check-config', { skip: skipWithoutAmtool() }, () => {
  const out = execFileSync(AMTOOL, ['check-config', join(ROOT, 'deploy/alertmanager/alertmanager.yaml')], { encoding: 'utf8' });
  assert.match(out, /SUCCESS/);
  assert.match(out, /3 receivers/);
});
