import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTelemetry, parseTraceparent } from './index.js';

test('createTelemetry wires logger, metrics and tracing; shutdown flushes spans', async () => {
  let exported = 0;
  const rx = createServer((req, res) => {
    req.resume();
    req.on('end', () => { exported++; res.end('{}'); });
  });
  await new Promise<void>((resolve) => rx.listen(0, '127.0.0.1', resolve));
  const lines: Record<string, unknown>[] = [];
  const telemetry = createTelemetry({
    service: 'gh',
    version: '1.0.0',
    logLevel: 'info',
    logDestination: { write: (s: string) => { lines.push(JSON.parse(s) as Record<string, unknown>); } },
    defaultMetrics: false,
    tracing: { otlp: { url: `http://127.0.0.1:${(rx.address() as AddressInfo).port}/v1/traces` } },
  });
  try {
    const span = telemetry.tracing.startRequestSpan('ext_proc', undefined, undefined);
    assert.equal(parseTraceparent(span.traceparent)?.traceId, span.traceId);
    const entry = {
      protocol: 'ext_proc', requestId: 'id-1', traceId: span.traceId, routeId: 'r', pathTemplate: '/r',
      method: 'GET', authority: 'a', path: '/r?q=1', status: 200, decision: 'allow', processingMs: 0.2, phases: {},
    } as const;
    telemetry.accessLog(entry);
    telemetry.metrics.requestCompleted(entry);
    span.end('allow', 200);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.service, 'gh');
    assert.equal(lines[0]!.trace_id, span.traceId);
    assert.match(await telemetry.metrics.render(), /^gatehouse_build_info\{version="1\.0\.0",node="[^"]+"\} 1$/m);
    assert.match(await telemetry.metrics.render(), /^gatehouse_requests_total\{[^}]*route="r"[^}]*\} 1$/m);
    await telemetry.shutdown();
    assert.equal(exported, 1, 'the span was flushed at shutdown');
  } finally {
    await new Promise<void>((resolve) => { rx.close(() => { resolve(); }); });
  }
});
