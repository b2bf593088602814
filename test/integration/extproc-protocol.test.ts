// The ext_proc adapter at the protocol level: message order, malformed input, budgets, cancellation
// and half-close, driven by a bare client that sends exactly what each test says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { GatehouseServer } from '../../src/server.js';
import { ProcessingMode_BodySendMode, ProcessingMode_HeaderSendMode } from '../../src/gen/envoy/extensions/filters/http/ext_proc/v3/processing_mode_pb.js';
import { CONTINUE, type Filter, type Outcome } from '../../src/pipeline/types.js';
import { RecordingTelemetry } from '../support/recording-telemetry.js';
import { testRoutes, type TestRoute } from '../support/routes.js';
import { RawExtProcStream, rawClient, requestHeaders, responseHeaders } from '../support/extproc-client.js';

const GET = (path: string, extra: [string, string][] = []): [string, string][] => [
  [':method', 'GET'],
  [':path', path],
  [':authority', 'api.example.com'],
  [':scheme', 'https'],
  ['x-request-id', 'req-123'],
  ...extra,
];

const dec = new TextDecoder();

async function startGatehouse(t: { after: (fn: () => unknown) => void }, routes: TestRoute[], unmatched: 'deny' | 'pass' = 'deny') {
  const telemetry = new RecordingTelemetry();
  const server = new GatehouseServer({ host: '127.0.0.1', port: 0, routes: testRoutes(routes, unmatched), telemetry });
  const port = await server.start();
  const client = rawClient(port);
  t.after(() => {
    client.close();
    server.forceStop();
  });
  return { telemetry, server, client, port };
}

const addHeader: Filter = {
  onRequestHeaders(ctx) {
    ctx.requestEdits.set('x-gateway', 'gatehouse');
    return CONTINUE;
  },
  onResponseHeaders(ctx) {
    ctx.responseEdits.set('x-served-by', 'gatehouse');
    return CONTINUE;
  },
};

test('a GET gets its header mutation in raw_value, a mode override for what the route needs, and a log line with the status', async (t) => {
  const { client, telemetry } = await startGatehouse(t, [{ id: 'api', prefix: '/api', filters: [addHeader] }]);
  const stream = new RawExtProcStream(client);
  stream.send(requestHeaders(GET('/api/accounts?x=1')));
  const first = await stream.next();
  assert.equal(first.response.case, 'requestHeaders');
  const set = first.response.case === 'requestHeaders' ? first.response.value.response?.headerMutation?.setHeaders : undefined;
  assert.equal(set?.length, 1);
  assert.equal(set[0]!.header!.key, 'x-gateway');
  assert.equal(dec.decode(set[0]!.header!.rawValue), 'gatehouse');
  assert.equal(set[0]!.header!.value, '', 'Envoy reads raw_value only; value stays empty');
  assert.equal(set[0]!.append, false);
  assert.equal(first.modeOverride?.responseHeaderMode, ProcessingMode_HeaderSendMode.SEND);
  assert.equal(first.modeOverride?.requestBodyMode, ProcessingMode_BodySendMode.NONE);
  assert.deepEqual(first.dynamicMetadata?.['gatehouse'], { route_id: 'api', decision: 'allow' });

  stream.send(responseHeaders([[':status', '201'], ['content-type', 'application/json']]));
  const second = await stream.next();
  assert.equal(second.response.case, 'responseHeaders');
  assert.equal(second.modeOverride, undefined, 'mode_override only rides on the request headers answer');
  stream.closeLikeEnvoy();
  const [entry] = await telemetry.entriesAtLeast(1);
  assert.equal(entry!.routeId, 'api');
  assert.equal(entry!.status, 201);
  assert.equal(entry!.decision, 'allow');
  assert.equal(entry!.requestId, 'req-123');
  assert.equal(entry!.path, '/api/accounts?x=1');
});

test('a route that needs the request body asks Envoy for it BUFFERED, and a replaced body carries a matching content-length', async (t) => {
  const upper: Filter = {
    onRequestBody: (_ctx, body) => ({ kind: 'replaceBody', body: Buffer.from(body.toString('utf8').toUpperCase() + '!') }),
  };
  const { client } = await startGatehouse(t, [{ id: 'b', prefix: '/b', filters: [upper], needs: { requestBody: true } }]);
  const stream = new RawExtProcStream(client);
  stream.send(requestHeaders([[':method', 'POST'], [':path', '/b'], [':authority', 'x'], ['content-length', '5']], false));
  const first = await stream.next();
  assert.equal(first.modeOverride?.requestBodyMode, ProcessingMode_BodySendMode.BUFFERED);
  stream.send({ request: { case: 'requestBody', value: { body: Buffer.from('hello'), endOfStream: true } } });
  const second = await stream.next();
  assert.equal(second.response.case, 'requestBody');
  const common = second.response.case === 'requestBody' ? second.response.value.response : undefined;
  assert.equal(common?.bodyMutation?.mutation.case, 'body');
  assert.equal(Buffer.from(common!.bodyMutation!.mutation.value as Uint8Array).toString(), 'HELLO!');
  const cl = common?.headerMutation?.setHeaders.find((h) => h.header?.key === 'content-length');
  assert.equal(dec.decode(cl?.header?.rawValue), '6');
  stream.closeLikeEnvoy();
});

test('an unmatched request is denied 404 with a stable reason code and a decision id the client can quote', async (t) => {
  const { client, telemetry } = await startGatehouse(t, [{ id: 'api', prefix: '/api', filters: [] }]);
  const stream = new RawExtProcStream(client);
  stream.send(requestHeaders(GET('/nowhere')));
  const answer = await stream.next();
  assert.equal(answer.response.case, 'immediateResponse');
  const ir = answer.response.case === 'immediateResponse' ? answer.response.value : undefined;
  assert.equal(ir?.status?.code, 404);
  assert.equal(ir?.details, 'gatehouse_route_not_found');
  const headers = Object.fromEntries(ir!.headers!.setHeaders.map((h) => [h.header!.key, dec.decode(h.header!.rawValue)]));
  assert.equal(headers['x-gatehouse-reason'], 'route_not_found');
  assert.match(headers['x-gatehouse-decision-id'] ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.notEqual(headers['x-gatehouse-decision-id'], 'req-123', "never the client's x-request-id");
  assert.deepEqual(JSON.parse(Buffer.from(ir!.body).toString()), { error: 'route_not_found', message: 'no route matches this request', decision_id: headers['x-gatehouse-decision-id'] });
  const [entry] = await telemetry.entriesAtLeast(1);
  assert.equal(entry!.decision, 'deny');
  assert.equal(entry!.reason, 'route_not_found');
  assert.equal(entry!.status, 404);
});

test('with unmatched: pass, an unmatched request continues untouched', async (t) => {
  const { client } = await startGatehouse(t, [], 'pass');
  const stream = new RawExtProcStream(client);
  stream.send(requestHeaders(GET('/anything')));
  const answer = await stream.next();
  assert.equal(answer.response.case, 'requestHeaders');
  assert.equal(answer.response.case === 'requestHeaders' ? answer.response.value.response?.headerMutation : 'x', undefined);
  stream.closeLikeEnvoy();
});

const malformed: [string, (s: RawExtProcStream) => void, grpc.status, RegExp][] = [
  ['undecodable bytes', (s) => { s.sendBytes(Buffer.from([0x0a, 0xff, 0xff, 0xff])); }, grpc.status.INVALID_ARGUMENT, /could not be decoded/],
  ['a message with no request set', (s) => { s.send({}); }, grpc.status.INVALID_ARGUMENT, /no request set/],
  ['response_headers before request_headers', (s) => { s.send(responseHeaders([[':status', '200']])); }, grpc.status.FAILED_PRECONDITION, /response_headers received before request_headers/],
  ['request_body before request_headers', (s) => { s.send({ request: { case: 'requestBody', value: { body: Buffer.from('x'), endOfStream: true } } }); }, grpc.status.FAILED_PRECONDITION, /request_body received before request_headers/],
];

for (const [name, send, code, details] of malformed) {
  test(`${name} ends the stream with ${grpc.status[code]}`, async (t) => {
    const { client, telemetry } = await startGatehouse(t, [{ id: 'api', prefix: '/', filters: [] }]);
    const stream = new RawExtProcStream(client);
    send(stream);
    const end = await stream.ended;
    assert.equal(end.code, code);
    assert.match(end.details, details);
    assert.equal(telemetry.inFlight.ext_proc, 0, 'the stream released its slot');
    assert.ok(telemetry.errors.some((e) => e.kind === (code === grpc.status.FAILED_PRECONDITION ? 'out_of_order_message' : 'malformed_message')));
  });
}

// A gRPC error would pass the request under failure_mode_allow: true, so a request that cannot be
// routed is denied like any other (the ext_authz adapter does the same for a Check without them).
for (const [name, headers, missing] of [
  ['without :path (an HTTP/2 CONNECT)', [[':method', 'CONNECT'], [':authority', 'x:443']], ':path'],
  ['without :method', [[':path', '/x'], [':authority', 'x']], ':method'],
] as [string, [string, string][], string][]) {
  test(`request_headers ${name} is denied 400 bad_request_headers, not failed`, async (t) => {
    const { client, telemetry } = await startGatehouse(t, [{ id: 'api', prefix: '/', filters: [] }], 'pass');
    const stream = new RawExtProcStream(client);
    stream.send(requestHeaders(headers));
    const answer = await stream.next();
    assert.equal(answer.response.case, 'immediateResponse');
    const immediate = answer.response.case === 'immediateResponse' ? answer.response.value : undefined;
    assert.equal(immediate?.status?.code, 400);
    assert.ok(immediate?.headers?.setHeaders.some((h) => h.header?.key === 'x-gatehouse-reason' && Buffer.from(h.header.rawValue).toString() === 'bad_request_headers'));
    stream.closeLikeEnvoy();
    await stream.ended;
    const entry = telemetry.entries.at(-1);
    assert.equal(entry?.decision, 'deny');
    assert.equal(entry?.reason, 'bad_request_headers');
    assert.match(entry?.detail ?? '', new RegExp(`lacks ${missing}`));
  });
}

test('a second request_headers on one stream is out of order', async (t) => {
  const { client } = await startGatehouse(t, [{ id: 'api', prefix: '/', filters: [] }]);
  const stream = new RawExtProcStream(client);
  stream.send(requestHeaders(GET('/a'), false));
  await stream.next();
  stream.send(requestHeaders(GET('/a')));
  const end = await stream.ended;
  assert.equal(end.code, grpc.status.FAILED_PRECONDITION);
  assert.match(end.details, /request_headers received before response_headers/);
});

test('a filter slower than the route budget is answered with 504 processing_timeout before Envoy gives up, and its work is aborted', async (t) => {
  let aborted = false;
  const slow: Filter = {
    onRequestHeaders: (ctx) =>
      new Promise<Outcome>((resolve) => {
        ctx.signal.addEventListener('abort', () => { aborted = true; });
        setTimeout(() => { resolve(CONTINUE); }, 500);
      }),
  };
  const { client, telemetry } = await startGatehouse(t, [{ id: 'slow', prefix: '/', filters: [slow], budgetMs: 40 }]);
  const stream = new RawExtProcStream(client);
  const sent = Date.now();
  stream.send(requestHeaders(GET('/x')));
  const answer = await stream.next();
  const took = Date.now() - sent;
  assert.equal(answer.response.case, 'immediateResponse');
  assert.equal(answer.response.case === 'immediateResponse' ? answer.response.value.status?.code : 0, 504);
  assert.ok(took < 400, `answered after ${took} ms, before the filter finished`);
  assert.ok(aborted, "the filter's signal was aborted");
  const [entry] = await telemetry.entriesAtLeast(1);
  assert.equal(entry!.reason, 'processing_timeout');
  assert.ok(telemetry.errors.some((e) => e.kind === 'budget_exceeded'));
});

test('a filter that throws gives a 500 internal_error denial, not a broken stream', async (t) => {
  const broken: Filter = { onRequestHeaders: () => Promise.reject(new Error('user API exploded')) };
  const { client, telemetry } = await startGatehouse(t, [{ id: 'broken', prefix: '/', filters: [broken] }]);
  const stream = new RawExtProcStream(client);
  stream.send(requestHeaders(GET('/x')));
  const answer = await stream.next();
  assert.equal(answer.response.case === 'immediateResponse' ? answer.response.value.status?.code : 0, 500);
  const [entry] = await telemetry.entriesAtLeast(1);
  assert.equal(entry!.reason, 'internal_error');
  assert.match(entry!.detail ?? '', /user API exploded/);
  assert.ok(telemetry.errors.some((e) => e.kind === 'filter_error'), 'counted as a filter error');
});

test('a client that goes away mid-phase cancels the filter work and releases the stream', async (t) => {
  let aborted = false;
  const slow: Filter = {
    onRequestHeaders: (ctx) =>
      new Promise<Outcome>((resolve) => {
        ctx.signal.addEventListener('abort', () => { aborted = true; resolve(CONTINUE); });
      }),
  };
  const { client, telemetry } = await startGatehouse(t, [{ id: 'slow', prefix: '/', filters: [slow], budgetMs: 5000 }]);
  const stream = new RawExtProcStream(client);
  stream.send(requestHeaders(GET('/x')));
  await new Promise((r) => setTimeout(r, 50));
  stream.cancel();
  const [entry] = await telemetry.entriesAtLeast(1);
  assert.equal(entry!.decision, 'cancelled');
  assert.ok(aborted);
  assert.equal(telemetry.inFlight.ext_proc, 0);
  assert.equal(stream.pending, 0, 'nothing was answered after the cancel');
});

test('a client that only half-closes still gets every answer owed, then OK', async (t) => {
  const { client } = await startGatehouse(t, [{ id: 'api', prefix: '/', filters: [addHeader] }]);
  const stream = new RawExtProcStream(client);
  stream.send(requestHeaders(GET('/x'), true));
  stream.send(responseHeaders([[':status', '200']]));
  stream.halfClose();
  const a = await stream.next();
  const b = await stream.next();
  assert.equal(a.response.case, 'requestHeaders');
  assert.equal(b.response.case, 'responseHeaders');
  const end = await stream.ended;
  assert.equal(end.code, grpc.status.OK);
});

test('draining refuses new streams with UNAVAILABLE and lets an open one finish', async (t) => {
  const gate: { open?: () => void } = {};
  const waits: Filter = {
    onRequestHeaders: () => new Promise<Outcome>((resolve) => { gate.open = () => { resolve(CONTINUE); }; }),
  };
  const { client, server, port } = await startGatehouse(t, [{ id: 'w', prefix: '/', filters: [waits], budgetMs: 5000 }]);
  const open = new RawExtProcStream(client);
  open.send(requestHeaders(GET('/x')));
  await new Promise((r) => setTimeout(r, 50));
  const drained = server.drain(3000);
  const late = new RawExtProcStream(rawClient(port));
  late.send(requestHeaders(GET('/y')));
  const lateEnd = await late.ended;
  assert.equal(lateEnd.code, grpc.status.UNAVAILABLE);
  gate.open!();
  const answer = await open.next();
  assert.equal(answer.response.case, 'requestHeaders');
  open.send(responseHeaders([[':status', '200']]));
  await open.next();
  open.closeLikeEnvoy();
  assert.equal(await drained, true, 'the drain finished within the grace period');
});

test("a route id named by Envoy (the route's name, as the xds.route_name attribute) never overrides gatehouse's own match", async (t) => {
  const tagA: Filter = { onRequestHeaders: (ctx) => { ctx.requestEdits.set('x-route', 'a'); return CONTINUE; } };
  const tagB: Filter = { onRequestHeaders: (ctx) => { ctx.requestEdits.set('x-route', 'b'); return CONTINUE; } };
  const { client, telemetry } = await startGatehouse(t, [{ id: 'a', prefix: '/a', filters: [tagA] }, { id: 'b', prefix: '/b', filters: [tagB] }]);
  const attrs = (routeName: string) => ({ 'envoy.filters.http.ext_proc': { 'xds.route_name': routeName, 'source.address': '203.0.113.7:52144' } });
  const named = new RawExtProcStream(client);
  named.send({ ...requestHeaders(GET('/a/x')), attributes: attrs('b') });
  const first = await named.next();
  assert.deepEqual(first.dynamicMetadata?.['gatehouse'], { route_id: 'a', decision: 'allow' }, 'decided on the route its path matches, not the one named');
  assert.deepEqual(telemetry.errors, [{ kind: 'route_name_mismatch', routeId: 'a' }], 'the disagreement is counted for operators');
  named.closeLikeEnvoy();
  const unknown = new RawExtProcStream(client);
  unknown.send({ ...requestHeaders(GET('/a/x')), attributes: attrs('not-a-gatehouse-route') });
  const second = await unknown.next();
  assert.deepEqual(second.dynamicMetadata?.['gatehouse'], { route_id: 'a', decision: 'allow' });
  unknown.closeLikeEnvoy();
  const entries = await telemetry.entriesAtLeast(2);
  assert.equal(entries[0]!.sourceAddress, '203.0.113.7:52144', 'the client address from the attributes reaches the log');
});
