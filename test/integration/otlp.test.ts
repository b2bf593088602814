// gatehouse started with telemetry.otlpEndpoint as docs/config.md writes it (a collector's base
// URL) and the standard OTEL_EXPORTER_OTLP_HEADERS: its spans reach POST /v1/traces with the header.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseConfig } from '../support/config.js';
import { startGatehouse, StartupError } from '../../src/gatehouse.js';

const ROUTES = 'routes:\n  - id: api\n    match: { path: { prefix: / } }\n';

test('spans go to <otlpEndpoint>/v1/traces with the OTEL_EXPORTER_OTLP_HEADERS headers', async (t) => {
  const received: { method: string; path: string; tenant: string | undefined }[] = [];
  const collector = createServer((req: IncomingMessage, res) => {
    req.resume();
    req.on('end', () => {
      received.push({ method: req.method ?? '', path: req.url ?? '', tenant: req.headers['x-tenant'] as string | undefined });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => { collector.close(() => { resolve(); }); }));
  const base = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
  const parsed = parseConfig(`listen: { grpc: "127.0.0.1:0", admin: "127.0.0.1:0" }\ntelemetry: { otlpEndpoint: "${base}" }\n${ROUTES}`, 'otlp-test.yaml');
  assert.ok(parsed.ok);
  const gatehouse = await startGatehouse({ config: parsed.config, runtimeMetrics: false, logDestination: { write: () => undefined }, env: { OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=payments' } });
  gatehouse.telemetry.tracing.startRequestSpan('ext_proc api', undefined, undefined).end('allow', 200);
  await gatehouse.stop(100); // flushes the span batch
  assert.ok(received.length >= 1, 'the collector got the span');
  assert.deepEqual(received[0], { method: 'POST', path: '/v1/traces', tenant: 'payments' });
});

test('a bad OTEL_* variable stops the start naming it', async () => {
  const parsed = parseConfig(`listen: { grpc: "127.0.0.1:0", admin: "127.0.0.1:0" }\n${ROUTES}`, 'otlp-test.yaml');
  assert.ok(parsed.ok);
  await assert.rejects(
    startGatehouse({ config: parsed.config, runtimeMetrics: false, logDestination: { write: () => undefined }, env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' } }),
    (err: unknown) => err instanceof StartupError && /^OTEL_EXPORTER_OTLP_PROTOCOL=grpc/.test(err.message),
  );
});
