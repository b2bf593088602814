import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { createTracing, parseTraceparent, parseTracestate, randomHexId } from './tracing.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';
const VALID = `00-${TRACE}-${PARENT}-01`;

test('traceparent: the valid forms', () => {
  assert.deepEqual(parseTraceparent(VALID), { traceId: TRACE, parentId: PARENT, flags: 1 });
  assert.deepEqual(parseTraceparent(`00-${TRACE}-${PARENT}-00`), { traceId: TRACE, parentId: PARENT, flags: 0 });
  assert.equal(parseTraceparent(`00-${TRACE}-${PARENT}-09`)?.flags, 9, 'unknown flags are kept, only bit 0 is used');
  assert.deepEqual(parseTraceparent(` ${VALID}\t`), { traceId: TRACE, parentId: PARENT, flags: 1 }, 'surrounding whitespace');
  // a future version: read as 00 when the first 55 characters fit and what follows starts with '-'
  assert.deepEqual(parseTraceparent(`01-${TRACE}-${PARENT}-01`), { traceId: TRACE, parentId: PARENT, flags: 1 });
  assert.deepEqual(parseTraceparent(`cc-${TRACE}-${PARENT}-01-what-the-future-holds`), { traceId: TRACE, parentId: PARENT, flags: 1 });
});

test('traceparent: everything else is invalid', () => {
  const invalid: (string | undefined)[] = [
    undefined,
    '',
    'garbage',
    `ff-${TRACE}-${PARENT}-01`, // version ff is forbidden
    `00-${TRACE}-${PARENT}-01-extra`, // version 00 is exactly 55 characters
    `00-${TRACE}-${PARENT}-1`,
    `00-${TRACE}-${PARENT}-001`,
    `cc-${TRACE}-${PARENT}-01x`, // future version: extra must start with '-'
    `00-${TRACE.toUpperCase()}-${PARENT}-01`, // lowercase only
    `00-${TRACE}-${PARENT.toUpperCase()}-01`,
    `0A-${TRACE}-${PARENT}-01`,
    `00-${TRACE}-${PARENT}-0F`,
    `00-${'0'.repeat(32)}-${PARENT}-01`, // zero trace id
    `00-${TRACE}-${'0'.repeat(16)}-01`, // zero parent id
    `00-${TRACE.slice(1)}g-${PARENT}-01`,
    `00-${TRACE}-${PARENT.slice(1)}z-01`,
    `00-${TRACE}-${PARENT}-zz`,
    `00_${TRACE}-${PARENT}-01`,
    `00-${TRACE}_${PARENT}-01`,
    `00-${TRACE}-${PARENT}_01`,
    `00-${TRACE.slice(2)}-${PARENT}00-01`, // dashes in the wrong places
    `00-${TRACE}-${PARENT}`,
  ];
  for (const h of invalid) assert.equal(parseTraceparent(h), undefined, String(h));
});

test('tracestate: validated and normalised, or dropped whole', () => {
  assert.equal(parseTracestate(undefined), undefined);
  assert.equal(parseTracestate(''), undefined);
  assert.equal(parseTracestate(' , '), undefined);
  assert.equal(parseTracestate('rojo=00f067aa0ba902b7'), 'rojo=00f067aa0ba902b7');
  assert.equal(parseTracestate('rojo=00f067aa0ba902b7 ,, congo=t61rcWkgMzE\t'), 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE');
  assert.equal(parseTracestate('tenant1@vendor=v a l, a-b_c*d/e=1'), 'tenant1@vendor=v a l,a-b_c*d/e=1');
  assert.equal(parseTracestate('Rojo=1'), undefined, 'keys are lowercase');
  assert.equal(parseTracestate('1abc=1'), undefined, 'a simple key starts with a letter');
  assert.equal(parseTracestate('rojo=1,rojo=2'), undefined, 'duplicate keys');
  assert.equal(parseTracestate('rojo'), undefined, 'no value');
  assert.equal(parseTracestate('rojo='), undefined, 'empty value');
  assert.equal(parseTracestate('rojo=a=b'), undefined, '= in the value');
  assert.equal(parseTracestate('rojo=é'), undefined, 'non-ASCII value');
  assert.equal(parseTracestate('ok=1,bad key=2'), undefined, 'one bad member drops all');
  assert.equal(parseTracestate(`k=${'v'.repeat(256)}`), 'k=' + 'v'.repeat(256));
  assert.equal(parseTracestate(`k=${'v'.repeat(257)}`), undefined, 'value longer than 256');
  const members = (n: number) => Array.from({ length: n }, (_, i) => `k${i}=v`).join(',');
  assert.equal(parseTracestate(members(32)), members(32));
  assert.equal(parseTracestate(members(33)), undefined, 'more than 32 members');
});

test('random ids: lowercase hex of the right length, distinct', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const t = randomHexId(16);
    const s = randomHexId(8);
    assert.match(t, /^[0-9a-f]{32}$/);
    assert.match(s, /^[0-9a-f]{16}$/);
    seen.add(t);
  }
  assert.equal(seen.size, 2000);
});

test('without an exporter: continues the trace with a new span id, or starts an unsampled one', async () => {
  const tracing = createTracing({ serviceName: 'gatehouse' });
  const span = tracing.startRequestSpan('ext_proc', VALID, 'rojo=1, congo=2');
  assert.equal(span.traceId, TRACE);
  const up = parseTraceparent(span.traceparent);
  assert.ok(up);
  assert.equal(up.traceId, TRACE);
  assert.notEqual(up.parentId, PARENT, 'upstream sees gatehouse span as its parent');
  assert.equal(up.flags, 1, 'the sampled flag follows the caller');
  assert.equal(span.tracestate, 'rojo=1,congo=2');
  assert.equal(parseTraceparent(tracing.startRequestSpan('x', `00-${TRACE}-${PARENT}-00`, undefined).traceparent)?.flags, 0);
  span.setAttribute('k', 'v');
  span.end('allow', 200);

  for (const bad of [undefined, 'nonsense', `00-${'0'.repeat(32)}-${PARENT}-01`]) {
    const fresh = tracing.startRequestSpan('ext_proc', bad, 'rojo=1');
    const p = parseTraceparent(fresh.traceparent);
    assert.ok(p, fresh.traceparent);
    assert.equal(p.traceId, fresh.traceId);
    assert.notEqual(p.traceId, TRACE);
    assert.equal(p.flags, 0, 'nothing records a new trace without an exporter');
    assert.equal(fresh.tracestate, undefined, 'a new trace drops the old tracestate');
  }
  await tracing.shutdown();
});

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
  status?: { code?: number };
}
interface OtlpRequest {
  resourceSpans: {
    resource: { attributes: { key: string; value: { stringValue?: string } }[] };
    scopeSpans: { spans: OtlpSpan[] }[];
  }[];
}

async function otlpReceiver() {
  const received: { path: string; contentType: string | undefined; body: OtlpRequest }[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let raw = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw);
      received.push({ path: req.url ?? '', contentType: req.headers['content-type'], body: JSON.parse(raw.toString()) as OtlpRequest });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    received,
    spans: () => received.flatMap((r) => r.body.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans))),
    close: () => new Promise<void>((resolve) => { server.close(() => { resolve(); }); }),
  };
}

test('with OTLP: spans reach the receiver with the caller as parent and the id handed upstream', async () => {
  const rx = await otlpReceiver();
  try {
    const tracing = createTracing({ serviceName: 'gatehouse-test', serviceVersion: '9.9.9', otlp: { url: rx.url } });
    const span = tracing.startRequestSpan('ext_proc orders', VALID, 'rojo=1');
    assert.equal(span.traceId, TRACE);
    assert.equal(span.tracestate, 'rojo=1');
    span.setAttribute('gatehouse.route', 'orders');
    span.end('deny', 403);
    const failed = tracing.startRequestSpan('ext_authz', `00-${TRACE}-${PARENT}-01`, undefined);
    failed.end('error');
    const unsampled = tracing.startRequestSpan('ext_proc', `00-${TRACE}-${PARENT}-00`, undefined);
    assert.equal(parseTraceparent(unsampled.traceparent)?.flags, 0);
    unsampled.end('allow', 200);
    await tracing.shutdown(); // flushes the batch

    assert.ok(rx.received.length >= 1);
    assert.equal(rx.received[0]!.path, '/v1/traces');
    assert.match(rx.received[0]!.contentType ?? '', /json/);
    const resource = rx.received[0]!.body.resourceSpans[0]!.resource.attributes;
    assert.equal(resource.find((a) => a.key === 'service.name')?.value.stringValue, 'gatehouse-test');
    assert.equal(resource.find((a) => a.key === 'service.version')?.value.stringValue, '9.9.9');

    const spans = rx.spans();
    assert.equal(spans.length, 2, 'the unsampled span is not exported');
    const got = spans.find((s) => s.name === 'ext_proc orders');
    assert.ok(got);
    assert.equal(got.traceId, TRACE);
    assert.equal(got.parentSpanId, PARENT);
    assert.equal(got.spanId, parseTraceparent(span.traceparent)?.parentId, 'upstream parent = the exported span');
    assert.equal(got.kind, 2, 'SERVER');
    const attr = (k: string) => got.attributes.find((a) => a.key === k)?.value;
    assert.deepEqual(attr('gatehouse.route'), { stringValue: 'orders' });
    assert.deepEqual(attr('gatehouse.decision'), { stringValue: 'deny' });
    assert.equal(Number(attr('http.response.status_code')?.intValue), 403);
    assert.equal(spans.find((s) => s.name === 'ext_authz')?.status?.code, 2, 'decision error marks the span ERROR');
  } finally {
    await rx.close();
  }
});

test('with OTLP: a new trace is sampled by ratio; the exported root has no parent', async () => {
  const rx = await otlpReceiver();
  try {
    const all = createTracing({ serviceName: 'g', otlp: { url: rx.url } });
    const root = all.startRequestSpan('root', 'not-a-traceparent', 'rojo=1');
    const p = parseTraceparent(root.traceparent);
    assert.ok(p);
    assert.equal(p.traceId, root.traceId);
    assert.equal(p.flags, 1);
    assert.equal(root.tracestate, undefined);
    root.end('allow', 200);
    await all.shutdown();
    const spans = rx.spans();
    assert.equal(spans.length, 1);
    assert.equal(spans[0]!.traceId, root.traceId);
    assert.ok(spans[0]!.parentSpanId === undefined || spans[0]!.parentSpanId === '');

    const none = createTracing({ serviceName: 'g', otlp: { url: rx.url }, sampleRatio: 0 });
    const dropped = none.startRequestSpan('root', undefined, undefined);
    assert.equal(parseTraceparent(dropped.traceparent)?.flags, 0);
    dropped.end('allow', 200);
    await none.shutdown();
    assert.equal(rx.spans().length, 1, 'ratio 0 exports nothing');
  } finally {
    await rx.close();
  }
});

test('with OTLP: export failures are logged, rate-limited, and never thrown', async () => {
  let posts = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => { posts++; res.writeHead(400, { 'content-type': 'application/json' }); res.end('{"code":3,"message":"bad"}'); });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const warnings: Record<string, unknown>[] = [];
  const { createLogger } = await import('./logger.js');
  const logger = createLogger({ level: 'warn', destination: { write: (s: string) => { warnings.push(JSON.parse(s) as Record<string, unknown>); } } });
  try {
    const tracing = createTracing({
      serviceName: 'g',
      otlp: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces` },
      logger,
      batch: { maxExportBatchSize: 1, scheduledDelayMillis: 1 },
    });
    for (let i = 0; i < 3; i++) tracing.startRequestSpan('s', VALID, undefined).end('allow', 200);
    for (let waited = 0; posts < 3 && waited < 5000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(posts, 3, 'one batch per span');
    await tracing.shutdown();
    const failures = warnings.filter((w) => w.msg === 'span export failed');
    assert.equal(failures.length, 1, 'one warning a minute at most');
    assert.equal(failures[0]!.dropped_spans, 1);
    assert.match(JSON.stringify(failures[0]!.err), /Bad Request/);

    // a failure while flushing at shutdown is logged; shutdown itself resolves
    const late = createTracing({ serviceName: 'g', otlp: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces` }, logger });
    late.startRequestSpan('s', VALID, undefined).end('allow', 200);
    await late.shutdown();
    assert.equal(warnings.at(-1)!.msg, 'span export at shutdown failed');
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => { server.close(() => { resolve(); }); });
  }
});
