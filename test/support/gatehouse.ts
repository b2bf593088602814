// gatehouse in-process behind the Envoy stand-in configured with the EnvoyFilter we ship, in front
// of a real upstream: what a client would see, end to end.
import { create } from '@bufbuild/protobuf';
import { durationFromMs } from '@bufbuild/protobuf/wkt';
import { parseDocument } from 'yaml';
import { parseConfig } from './config.js';
import { startGatehouse, type RunningGatehouse } from '../../src/gatehouse.js';
import { ExtAuthzStandIn } from '../harness/ext-authz.js';
import { ExtProcStandIn } from '../harness/ext-proc.js';
import { startUpstream, type Upstream, type UpstreamHandler } from '../harness/upstream.js';
import { ExternalProcessorSchema } from '../../src/gen/envoy/extensions/filters/http/ext_proc/v3/ext_proc_pb.js';
import { ExtAuthzSchema } from '../../src/gen/envoy/extensions/filters/http/ext_authz/v3/ext_authz_pb.js';
import { routeResponseHeadersToRemove, shippedExtAuthzConfig, shippedExtProcConfig } from './manifests.js';
import { TEST_REGISTRY } from './test-filters.js';
import type { ExternalProcessor } from '../../src/gen/envoy/extensions/filters/http/ext_proc/v3/ext_proc_pb.js';
import type { ExtAuthz } from '../../src/gen/envoy/extensions/filters/http/ext_authz/v3/ext_authz_pb.js';

export interface EndToEnd {
  readonly gatehouse: RunningGatehouse;
  readonly envoy: ExtProcStandIn;
  /** the same gatehouse asked over ext_authz, with the shipped ext_authz EnvoyFilter */
  readonly authz: ExtAuthzStandIn;
  readonly upstream: Upstream;
  /** gatehouse's JSON log lines */
  readonly logs: Record<string, unknown>[];
  /** resolves with the access-log line of a request id (bounded) */
  accessLine(requestId: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** resolves with the first log line with this `msg` and request id (bounded) */
  logLine(msg: string, requestId: string, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/** Envoy set up other than the shipped EnvoyFilters say: what a misconfigured or older gateway sends. */
export interface EnvoyVariant {
  readonly extProc?: (shipped: ExternalProcessor) => ExternalProcessor;
  readonly extAuthz?: (shipped: ExtAuthz) => ExtAuthz;
  /** the connection manager's per-stream buffer limit (Envoy's default 1 MiB): what BUFFERED_PARTIAL cuts at */
  readonly bufferLimitBytes?: number;
}

/**
 * The timers of a test run. The shipped ones (route budget 150 ms, Envoy's message timeout 200 ms)
 * are production goals: on a busy machine a correct answer can miss them, and a test's verdict must
 * not depend on how busy the machine is. So a test gets these generous ones wherever it sets none
 * itself (a route's own budgetMs, `defaults.budgetMs`, `envoy.messageTimeoutMs` stay as written);
 * timing goals are the bench's.
 */
export const TEST_TIMERS = { budgetMs: 20_000, messageTimeoutMs: 30_000, redisCommandTimeoutMs: 5_000 } as const;

/** The test's config with TEST_TIMERS filled in where it sets none (anchors and the rest kept). */
function withTestTimers(configYaml: string): string {
  const doc = parseDocument(configYaml);
  if (doc.errors.length > 0) return configYaml; // parseConfig reports it
  if (!doc.hasIn(['defaults', 'budgetMs'])) doc.setIn(['defaults', 'budgetMs'], TEST_TIMERS.budgetMs);
  if (!doc.hasIn(['envoy', 'messageTimeoutMs'])) doc.setIn(['envoy', 'messageTimeoutMs'], TEST_TIMERS.messageTimeoutMs);
  // a redis-server sharing a busy machine may answer later than the 50 ms default
  if (doc.hasIn(['stores', 'redis']) && !doc.hasIn(['stores', 'redis', 'commandTimeoutMs'])) doc.setIn(['stores', 'redis', 'commandTimeoutMs'], TEST_TIMERS.redisCommandTimeoutMs);
  return doc.toString();
}

export async function endToEnd(
  t: { after: (fn: () => unknown) => void },
  configYaml: string,
  upstreamHandler?: UpstreamHandler,
  variant: EnvoyVariant = {},
): Promise<EndToEnd> {
  const parsed = parseConfig(withTestTimers(`listen: { grpc: "127.0.0.1:0", admin: "127.0.0.1:0" }\n${configYaml}`), 'test-gatehouse.yaml', { registry: TEST_REGISTRY });
  if (!parsed.ok) throw new Error(parsed.errors.map((e) => e.format()).join('\n'));
  const logs: Record<string, unknown>[] = [];
  const gatehouse = await startGatehouse({
    config: parsed.config,
    registry: TEST_REGISTRY,
    runtimeMetrics: false,
    logDestination: { write: (line: string) => { logs.push(JSON.parse(line) as Record<string, unknown>); } },
  });
  const upstream = await startUpstream(upstreamHandler);
  // the shipped filters, with Envoy's timers as generous as gatehouse's (TEST_TIMERS)
  const extProc = create(ExternalProcessorSchema, { ...shippedExtProcConfig(), messageTimeout: durationFromMs(parsed.config.envoy.messageTimeoutMs) });
  const shippedAuthz = shippedExtAuthzConfig();
  const extAuthz = shippedAuthz.services.case === 'grpcService'
    ? create(ExtAuthzSchema, { ...shippedAuthz, services: { case: 'grpcService', value: { ...shippedAuthz.services.value, timeout: durationFromMs(parsed.config.envoy.messageTimeoutMs) } } })
    : shippedAuthz;
  const envoy = new ExtProcStandIn({ processorAddress: `127.0.0.1:${gatehouse.grpcPort}`, filter: (variant.extProc ?? ((f) => f))(extProc), upstream: { host: '127.0.0.1', port: upstream.port }, ...(variant.bufferLimitBytes !== undefined ? { bufferLimitBytes: variant.bufferLimitBytes } : {}) });
  // the shipped route configuration too: it removes gatehouse's headers from upstream responses
  const authz = new ExtAuthzStandIn({
    authzAddress: `127.0.0.1:${gatehouse.grpcPort}`,
    filter: (variant.extAuthz ?? ((f) => f))(extAuthz),
    upstream: { host: '127.0.0.1', port: upstream.port },
    routeResponseHeadersToRemove: routeResponseHeadersToRemove('envoyfilter-ext-authz.yaml'),
  });
  t.after(async () => {
    envoy.close();
    authz.close();
    await upstream.close();
    await gatehouse.stop(200);
  });
  const e2e: EndToEnd = {
    gatehouse,
    envoy,
    authz,
    upstream,
    logs,
    accessLine(requestId, timeoutMs) {
      return e2e.logLine('request', requestId, timeoutMs);
    },
    async logLine(msg, requestId, timeoutMs = 2000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        // a line is found by the request id Envoy sent or by the decision id gatehouse gave the client
        const line = logs.find((l) => l['msg'] === msg && (l['request_id'] === requestId || l['decision_id'] === requestId));
        if (line) return line;
        if (Date.now() > deadline) throw new Error(`no ${msg} log line for ${requestId}; log:\n${logs.map((l) => JSON.stringify(l)).join('\n')}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
  };
  return e2e;
}
