// `npm run demo`: what an operator sees. A gatehouse set up as the Helm chart sets it up (the admin
// API on its own listener, Elastic Common Schema logs) serves one request and one refusal; then:
// which listener answers what (metrics and probes for Prometheus and the kubelet, the admin API
// apart), the access line as Elasticsearch gets it, the metrics the dashboard and alerts read, and
// `npm run check` refusing a route whose method is not an HTTP method.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../src/config/load.js';
import { FILTER_REGISTRY } from '../src/filters/registry.js';
import { startGatehouse } from '../src/gatehouse.js';
import { METRIC } from '../src/telemetry/metric-names.js';
import { ExtProcStandIn } from '../test/harness/ext-proc.js';
import { echoResponse, startUpstream } from '../test/harness/upstream.js';
import { shippedExtProcConfig } from '../test/support/manifests.js';

const tty = process.stdout.isTTY;
const bold = (s: string) => (tty ? `\x1b[1m${s}\x1b[0m` : s);
const green = (s: string) => (tty ? `\x1b[32m${s}\x1b[0m` : s);
const red = (s: string) => (tty ? `\x1b[31m${s}\x1b[0m` : s);
const dim = (s: string) => (tty ? `\x1b[2m${s}\x1b[0m` : s);

const ADMIN_TOKEN = 'demo-operations-token-0123456789';

/** the chart's shape: admin API on its own listener, ECS logs; one route */
const configText = (tokenFile: string): string => `
listen: { grpc: "127.0.0.1:0", admin: "127.0.0.1:0" }
telemetry: { logFormat: ecs, serviceName: gatehouse-demo }
admin: { tokenFile: ${JSON.stringify(tokenFile)}, listen: "127.0.0.1:0" }
routes:
  - id: accounts-read
    match:
      path: { template: "/api/v1/accounts/:accountId" }
      methods: [GET]
`;

/** the same route with a typo in its method: `methods: [GTE]` would never match anything */
const TYPO_CONFIG = `
routes:
  - id: accounts-read
    match:
      path: { template: "/api/v1/accounts/:accountId" }
      methods: [GTE]
`;

const ECS_FIELDS = ['@timestamp', 'log.level', 'message', 'service.name', 'event.outcome', 'trace.id', 'url.path', 'http.request.method', 'http.response.status_code', 'gatehouse.route_id', 'gatehouse.reason'];
const SHOWN_METRICS = [METRIC.storeUp, METRIC.userApiCalls, METRIC.adminApiCalls, METRIC.denials, METRIC.securityEventsBuffered];

/** `npm run check` as built: node dist/src/main.js (this file is dist/demo/operations.js then) */
export const BUILT_CHECK: readonly string[] = [process.execPath, join(import.meta.dirname, '../src/main.js')];

/** `check`: the command before `--check` (the built main; a test passes the sources through tsx) */
export async function operationsScenario(n: number, print: (line: string) => void, check: readonly string[] = BUILT_CHECK): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-demo-ops-'));
  const logs: Record<string, unknown>[] = [];
  try {
    const tokenFile = join(dir, 'admin-token');
    writeFileSync(tokenFile, ADMIN_TOKEN);
    const parsed = parseConfig(configText(tokenFile), join(dir, 'gatehouse.yaml'), { registry: FILTER_REGISTRY });
    if (!parsed.ok) throw new Error(parsed.errors.map((e) => e.format()).join('\n'));
    const gatehouse = await startGatehouse({ config: parsed.config, runtimeMetrics: false, logDestination: { write: (line: string) => { logs.push(JSON.parse(line) as Record<string, unknown>); } } });
    const upstream = await startUpstream(echoResponse);
    const envoy = new ExtProcStandIn({ processorAddress: `127.0.0.1:${gatehouse.grpcPort}`, filter: shippedExtProcConfig(), upstream: { host: '127.0.0.1', port: upstream.port } });
    try {
      print(bold(`${n}. Operations: the admin API on its own listener, ECS logs, the metrics behind the dashboard and alerts, npm run check`) + dim('  [ext_proc]'));
      print(dim(`   config as the Helm chart writes it: listen.admin 127.0.0.1:${gatehouse.adminPort} (metrics, probes), admin.listen 127.0.0.1:${String(gatehouse.adminApiPort)} (the API), telemetry.logFormat ecs`));
      await envoy.request({ method: 'GET', path: '/api/v1/accounts/42', authority: 'api.example.com', headers: [['x-request-id', 'demo-ops-allowed'], ['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01']] });
      await envoy.request({ method: 'DELETE', path: '/api/v1/accounts/42', authority: 'api.example.com', headers: [['x-request-id', 'demo-ops-refused']] });

      // which listener answers what: the NetworkPolicy opens the first to Prometheus, never the second
      const call = async (port: number | undefined, path: string, token?: string): Promise<string> => {
        const response = await fetch(`http://127.0.0.1:${String(port)}${path}`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
        await response.arrayBuffer();
        return response.status < 400 ? green(String(response.status)) : red(String(response.status));
      };
      print(`   GET /metrics         on the metrics listener ← ${await call(gatehouse.adminPort, '/metrics')}   on the API listener ← ${await call(gatehouse.adminApiPort, '/metrics')}`);
      print(`   GET /readyz          on the metrics listener ← ${await call(gatehouse.adminPort, '/readyz')}   on the API listener ← ${await call(gatehouse.adminApiPort, '/readyz')}`);
      print(`   GET /admin/accounts  on the metrics listener ← ${await call(gatehouse.adminPort, '/admin/accounts', ADMIN_TOKEN)}   on the API listener ← ${await call(gatehouse.adminApiPort, '/admin/accounts', ADMIN_TOKEN)} ${dim('(bearer token)')}`);
      print(`   GET /admin/accounts  on the API listener without the token ← ${await call(gatehouse.adminApiPort, '/admin/accounts')}`);

      // the access line as Elasticsearch receives it
      for (const id of ['demo-ops-allowed', 'demo-ops-refused']) {
        const line = logs.find((l) => l['message'] === 'request' && JSON.stringify(l).includes(id));
        const shown = ECS_FIELDS.filter((f) => line?.[f] !== undefined).map((f) => `${f}=${JSON.stringify(line?.[f])}`);
        print(`   ECS access line (${id}): ${dim(shown.join(' '))}`);
      }

      // the families the dashboard's Redis, user API and security panels and the alerts read
      const exposition = await (await fetch(`http://127.0.0.1:${gatehouse.adminPort}/metrics`)).text();
      print('   /metrics, what the dashboard and the GatehouseStoreDown / security-event alerts read:');
      for (const line of exposition.split('\n')) {
        if (SHOWN_METRICS.some((name) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))) print(dim(`      ${line}`));
      }
    } finally {
      envoy.close();
      await upstream.close();
      await gatehouse.stop(500);
    }

    // `npm run check` is the built main with --check: run exactly that on a config with a typo
    const typo = join(dir, 'typo.yaml');
    writeFileSync(typo, TYPO_CONFIG);
    const [command, ...args] = check;
    let exit = 0;
    let output: string;
    try {
      output = execFileSync(command!, [...args, '--check'], { env: { ...process.env, GATEHOUSE_CONFIG: typo }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
    } catch (error) {
      const e = error as { status?: number; stdout?: string; stderr?: string };
      exit = e.status ?? -1;
      output = `${e.stdout ?? ''}${e.stderr ?? ''}`;
    }
    print(`   GATEHOUSE_CONFIG=typo.yaml npm run check   (match.methods: [GTE]) ← exit ${exit === 0 ? green('0') : red(String(exit))}`);
    for (const line of output.trim().split('\n')) print(dim(`      ${line.replaceAll(dir, '…')}`));
    print('');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
