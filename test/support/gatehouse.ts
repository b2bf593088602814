// gatehouse in-process behind the Envoy stand-in configured with the EnvoyFilter we ship, in front
// of a real upstream: what a client would see, end to end.
import { parseConfig } from './config.js';
import { startGatehouse, type RunningGatehouse } from '../../src/gatehouse.js';
import { ExtAuthzStandIn } from '../harness/ext-authz.js';
import { ExtProcStandIn } from '../harness/ext-proc.js';
import { startUpstream, type Upstream, type UpstreamHandler } from '../harness/upstream.js';
import { shippedExtAuthzConfig, shippedExtProcConfig } from './manifests.js';
import { TEST_REGISTRY } from './test-filters.js';

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

export async function endToEnd(
  t: { after: (fn: () => unknown) => void },
  configYaml: string,
  upstreamHandler?: UpstreamHandler,
): Promise<EndToEnd> {
  const parsed = parseConfig(`listen: { grpc: "127.0.0.1:0", admin: "127.0.0.1:0" }\n${configYaml}`, 'test-gatehouse.yaml', { registry: TEST_REGISTRY });
  if (!parsed.ok) throw new Error(parsed.errors.map((e) => e.format()).join('\n'));
  const logs: Record<string, unknown>[] = [];
  const gatehouse = await startGatehouse({
    config: parsed.config,
    registry: TEST_REGISTRY,
    runtimeMetrics: false,
    logDestination: { write: (line: string) => { logs.push(JSON.parse(line) as Record<string, unknown>); } },
  });
  const upstream = await startUpstream(upstreamHandler);
  const envoy = new ExtProcStandIn({ processorAddress: `127.0.0.1:${gatehouse.grpcPort}`, filter: shippedExtProcConfig(), upstream: { host: '127.0.0.1', port: upstream.port } });
  const authz = new ExtAuthzStandIn({ authzAddress: `127.0.0.1:${gatehouse.grpcPort}`, filter: shippedExtAuthzConfig(), upstream: { host: '127.0.0.1', port: upstream.port } });
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
        const line = logs.find((l) => l['msg'] === msg && l['request_id'] === requestId);
        if (line) return line;
        if (Date.now() > deadline) throw new Error(`no ${msg} log line for ${requestId}; log:\n${logs.map((l) => JSON.stringify(l)).join('\n')}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
  };
  return e2e;
}
