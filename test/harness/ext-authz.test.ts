// Self-tests of ExtAuthzStandIn against a scripted fake Authorization server (catalogue 11).
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createTestCa } from '../support/certificates.js';
import { after, before, describe, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { durationFromMs } from '@bufbuild/protobuf/wkt';
import * as grpc from '@grpc/grpc-js';
import { HeaderValueOptionSchema, HeaderValueSchema, HeaderValueOption_HeaderAppendAction as AppendAction } from '../../src/gen/envoy/config/core/v3/base_pb.js';
import { GrpcServiceSchema } from '../../src/gen/envoy/config/core/v3/grpc_service_pb.js';
import { BufferSettingsSchema, ExtAuthzPerRouteSchema, ExtAuthzSchema } from '../../src/gen/envoy/extensions/filters/http/ext_authz/v3/ext_authz_pb.js';
import { CheckResponseSchema, DeniedHttpResponseSchema, OkHttpResponseSchema } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { StatusSchema } from '../../src/gen/google/rpc/status_pb.js';
import { StatusCode } from '../../src/gen/envoy/type/v3/http_status_pb.js';
import { ExtAuthzStandIn } from './ext-authz.js';
import { startFakeAuthz, type FakeAuthz } from './fake-processor.js';
import { get, getAll } from './helpers.js';
import { startUpstream, type Upstream } from './upstream.js';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { CheckRequest, CheckResponse } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';

let upstream: Upstream;
before(async () => { upstream = await startUpstream(); });
after(async () => { await upstream.close(); });

function authzConfig(init: MessageInitShape<typeof ExtAuthzSchema> = {}, timeoutMs?: number): ReturnType<typeof create<typeof ExtAuthzSchema>> {
  return create(ExtAuthzSchema, {
    services: {
      case: 'grpcService',
      value: create(GrpcServiceSchema, {
        targetSpecifier: { case: 'envoyGrpc', value: { clusterName: 'authz' } },
        ...(timeoutMs === undefined ? {} : { timeout: durationFromMs(timeoutMs) }),
      }),
    },
    ...init,
  });
}

const hv = (key: string, value: string, append?: boolean, appendAction?: AppendAction): ReturnType<typeof create<typeof HeaderValueOptionSchema>> =>
  create(HeaderValueOptionSchema, {
    header: create(HeaderValueSchema, { key, value }),
    ...(append === undefined ? {} : { append }),
    ...(appendAction === undefined ? {} : { appendAction }),
  });

function ok(init: MessageInitShape<typeof OkHttpResponseSchema> = {}, dynamicMetadata?: Record<string, string>): CheckResponse {
  return create(CheckResponseSchema, {
    status: create(StatusSchema, { code: 0 }),
    httpResponse: { case: 'okResponse', value: create(OkHttpResponseSchema, init) },
    ...(dynamicMetadata === undefined ? {} : { dynamicMetadata }),
  });
}

async function withAuthz<T>(answer: Parameters<typeof startFakeAuthz>[0], fn: (a: FakeAuthz) => Promise<T>): Promise<T> {
  const a = await startFakeAuthz(answer);
  try {
    return await fn(a);
  } finally {
    await a.close();
  }
}

describe('ext_authz stand-in (11)', () => {
  test('CheckRequest: pseudo-headers in headers map, comma-joined repeats, path with query, id not x-request-id, grpc-timeout from the config', async () => {
    await withAuthz(() => ok(), async (a) => {
      // a generous timeout: the first call to a fresh server may take longer than 200 ms on a busy machine
      const s = new ExtAuthzStandIn({ authzAddress: a.address, filter: authzConfig({}, 30_000), upstream });
      const r = await s.request({ method: 'GET', path: '/p?q=1', authority: 'svc', headers: [['x-a', '1'], ['x-a', '2'], ['x-request-id', 'rid-1']] });
      s.close();
      assert.equal(r.status, 200);
      assert.equal(r.outcome, 'ok');
      const http = a.calls[0]?.request.attributes?.request?.http;
      assert.ok(http !== undefined);
      assert.equal(http.headers[':method'], 'GET');
      assert.equal(http.headers[':path'], '/p?q=1');
      assert.equal(http.headers[':authority'], 'svc');
      assert.equal(http.headers['x-a'], '1,2');
      assert.equal(http.path, '/p?q=1');
      assert.equal(http.host, 'svc');
      assert.equal(http.query, '');
      assert.match(http.id, /^[0-9]+$/);
      assert.notEqual(http.id, 'rid-1');
      assert.equal(http.headerMap, undefined);
      // grpc-timeout on the wire (grpc-js turns it into the server-side deadline)
      const dl = a.calls[0]?.deadlineMs ?? Infinity;
      assert.ok(dl > 0 && dl <= 30_000, `deadline ${dl}`);
      assert.equal(r.grpcTimeout, '30000m');
      assert.equal(a.calls[0]?.request.attributes?.source?.address?.address.case, 'socketAddress');
    });
  });

  test('without a timeout in the config, grpc-timeout is 200m (11.1)', async () => {
    await withAuthz(() => ok(), async (a) => {
      const s = new ExtAuthzStandIn({ authzAddress: a.address, filter: authzConfig(), upstream });
      // the verdict may be a timeout on a busy machine: only the deadline sent is asserted
      const r = await s.request({ method: 'GET', path: '/', authority: 'svc' });
      s.close();
      assert.equal(r.grpcTimeout, '200m');
      const dl = a.calls[0]?.deadlineMs;
      assert.ok(dl === undefined || dl <= 200, `deadline ${String(dl)}`);
    });
  });

  test('metadata_context from metadata_context_namespaces; x-envoy-downstream-service-cluster as source.service (11.4, 11.8)', async () => {
    await withAuthz(() => ok(), async (a) => {
      const s = new ExtAuthzStandIn({ authzAddress: a.address, filter: authzConfig({ metadataContextNamespaces: ['jwt'] }), upstream });
      await s.request({ method: 'GET', path: '/', authority: 'svc', headers: [['x-envoy-downstream-service-cluster', 'web']] }, { dynamicMetadata: { jwt: { sub: 'bob' }, other: { x: 1 } } });
      s.close();
      const attrs = a.calls[0]?.request.attributes;
      assert.deepEqual(attrs?.metadataContext?.filterMetadata, { jwt: { sub: 'bob' } });
      assert.equal(attrs?.source?.service, 'web');
    });
  });

  test('an mTLS downstream: source.principal is the first URI SAN, else the subject; source.certificate the URL-encoded PEM only with include_peer_certificate (11.4)', async () => {
    const ca = createTestCa();
    const withUri = ca.issue({ subject: '/O=Acme/CN=acme', uri: 'spiffe://partners.example.com/acme' });
    const subjectOnly = ca.issue({ subject: '/O=Dev/CN=dev' });
    ca.close();
    await withAuthz(() => ok(), async (a) => {
      const plain = new ExtAuthzStandIn({ authzAddress: a.address, filter: authzConfig({}), upstream });
      await plain.request({ method: 'GET', path: '/', authority: 'svc' }, { peerCertificate: withUri.pem });
      await plain.request({ method: 'GET', path: '/', authority: 'svc' }, { peerCertificate: subjectOnly.pem });
      plain.close();
      const including = new ExtAuthzStandIn({ authzAddress: a.address, filter: authzConfig({ includePeerCertificate: true }), upstream });
      await including.request({ method: 'GET', path: '/', authority: 'svc' }, { peerCertificate: withUri.pem });
      including.close();
      assert.equal(a.calls[0]?.request.attributes?.source?.principal, 'spiffe://partners.example.com/acme');
      assert.equal(a.calls[0]?.request.attributes?.source?.certificate, '');
      assert.equal(a.calls[1]?.request.attributes?.source?.principal, 'CN=dev,O=Dev');
      const sent = a.calls[2]?.request.attributes?.source?.certificate ?? '';
      assert.ok(!/[\n /+=]/.test(sent), 'newline, space, +, / and = are percent-encoded');
      assert.equal(decodeURIComponent(sent), new X509Certificate(withUri.pem).toString());
    });
  });

  test('encode_raw_headers: header_map with raw_value, one entry per header, headers map empty (11.6)', async () => {
    await withAuthz(() => ok(), async (a) => {
      const s = new ExtAuthzStandIn({ authzAddress: a.address, filter: authzConfig({ encodeRawHeaders: true }), upstream });
      await s.request({ method: 'GET', path: '/', authority: 'svc', headers: [['x-a', '1'], ['x-a', '2']] });
      s.close();
      const http = a.calls[0]?.request.attributes?.request?.http;
      assert.deepEqual(Object.keys(http?.headers ?? {}), []);
      const xa = (http?.headerMap?.headers ?? []).filter((h) => h.key === 'x-a').map((h) => Buffer.from(h.rawValue).toString());
      assert.deepEqual(xa, ['1', '2']);
    });
  });

  test('with_request_body: body, x-envoy-auth-partial-body, client copy dropped; too large without partial → 413 and no check (11.7)', async () => {
    await withAuthz(() => ok(), async (a) => {
      const filter = authzConfig({ withRequestBody: create(BufferSettingsSchema, { maxRequestBytes: 4, allowPartialMessage: true }) });
      const s = new ExtAuthzStandIn({ authzAddress: a.address, filter, upstream });
      const r = await s.request({ method: 'POST', path: '/', authority: 'svc', headers: [['x-envoy-auth-partial-body', 'spoof']], body: [Buffer.from('ab'), Buffer.from('cdef')] }, { pace: 'lockstep' });
      const http = a.calls[0]?.request.attributes?.request?.http;
      assert.equal(http?.body, 'abcd');
      assert.equal(http.headers['x-envoy-auth-partial-body'], 'true');
      assert.equal(r.upstreamRequest?.body.toString(), 'abcdef');
      s.close();
      const strict = new ExtAuthzStandIn({ authzAddress: a.address, filter: authzConfig({ withRequestBody: create(BufferSettingsSchema, { maxRequestBytes: 4 }) }), upstream });
      const calls = a.calls.length;
      const big = await strict.request({ method: 'POST', path: '/', authority: 'svc', body: [Buffer.from('abc'), Buffer.from('def')] }, { pace: 'lockstep' });
      strict.close();
      assert.equal(big.status, 413);
      assert.equal(a.calls.length, calls);
    });
  });

  test('OK: headers set / append-only-if-present (value field), remove (not :path/host), response_headers_to_add, query params', async () => {
    await withAuthz(() => ok({
      headers: [hv('x-set', 'S'), hv('x-exist', 'more', true), hv('x-absent', 'dropped', true), { ...hv('x-raw', ''), header: create(HeaderValueSchema, { key: 'x-raw', rawValue: Buffer.from('R') }) }],
      headersToRemove: ['x-remove', ':path', 'host'],
      responseHeadersToAdd: [hv('x-resp', 'a'), hv('x-resp', 'b'), hv('x-over', 'o', false), hv('x-abs', 'n', undefined, AppendAction.ADD_IF_ABSENT)],
      queryParametersToSet: [{ key: 'k', value: 'v' }],
      queryParametersToRemove: ['drop'],
    }, { user: 'u1' }), async (a) => {
      const s = new ExtAuthzStandIn({ authzAddress: a.address, filter: authzConfig(), upstream });
      const r = await s.request({ method: 'GET', path: '/p?drop=1&keep=2', authority: 'svc', headers: [['x-exist', 'base'], ['x-remove', 'x']] });
      s.close();
      const up = r.upstreamRequest!;
      assert.equal(get(up.headers, 'x-set'), 'S');
      assert.equal(get(up.headers, 'x-exist'), 'base,more');
      assert.equal(get(up.headers, 'x-absent'), undefined);
      assert.equal(get(up.headers, 'x-raw'), '');
      assert.equal(get(up.headers, 'x-remove'), undefined);
      assert.equal(up.path, '/p?keep=2&k=v');
      assert.deepEqual(getAll(r.headers, 'x-resp'), ['a', 'b']);
      assert.equal(get(r.headers, 'x-over'), 'o');
      assert.equal(get(r.headers, 'x-abs'), 'n');
      const md = r.dynamicMetadata['envoy.filters.http.ext_authz'] ?? {};
      assert.equal(md.user, 'u1');
      assert.equal(typeof md.ext_authz_duration, 'number');
    });
  });

  test('OK without decoder_header_mutation_rules may set :authority and x-envoy-*; with rules they are ignored, or 500 with disallow_is_error (11.15)', async () => {
    const answer = (): CheckResponse => ok({ headers: [hv(':authority', 'other'), hv('x-envoy-x', '1')] });
    await withAuthz(answer, async (a) => {
      const free = new ExtAuthzStandIn({ authzAddress: a.address, filter: authzConfig(), upstream });
      const r1 = await free.request({ method: 'GET', path: '/', authority: 'svc' });
      free.close();
      assert.equal(get(r1.upstreamRequest?.headers ?? [], 'host'), 'other');
      assert.equal(get(r1.upstreamRequest?.headers ?? [], 'x-envoy-x'), '1');
      const ruled = new ExtAuthzStandIn({ authzAddress: a.address, filter: authzConfig({ decoderHeaderMutationRules: {} }), upstream });
      const r2 = await ruled.request({ method: 'GET', path: '/', authority: 'svc' });
      ruled.close();
      assert.equal(get(r2.upstreamRequest?.headers ?? [], 'host'), 'svc');
      assert.equal(get(r2.upstreamRequest?.headers ?? [], 'x-envoy-x'), undefined);
      const strict = new ExtAuthzStandIn({ authzAddress: a.address, filter: authzConfig({ decoderHeaderMutationRules: { disallowIsError: true } }), upstream });
      const r3 = await strict.request({ method: 'GET', path: '/', authority: 'svc' });
      strict.close();
      assert.equal(r3.status, 500);
      assert.equal(r3.details, 'ext_authz_invalid');
    });
  });

  test('Denied: 403 default, body, headers without append (duplicates kept), append:true dropped; custom status (11.17)', async () => {
    const deny = (code: StatusCode | undefined): CheckResponse => create(CheckResponseSchema, {
      status: create(StatusSchema, { code: 7 }),
      httpResponse: { case: 'deniedResponse', value: create(DeniedHttpResponseSchema, {
        ...(code !== undefined ? { status: { code } } : {}),
        body: 'nope',
        headers: [hv('set-cookie', 'a=1'), hv('set-cookie', 'b=2'), hv('x-app', 'dropped', true)],
      }) },
    });
    let code: StatusCode | undefined;
    await withAuthz(() => deny(code), async (a) => {
      const s = new ExtAuthzStandIn({ authzAddress: a.address, filter: authzConfig(), upstream });
      const r = await s.request({ method: 'GET', path: '/', authority: 'svc' });
      assert.equal(r.status, 403);
      assert.equal(r.body.toString(), 'nope');
      assert.equal(r.details, 'ext_authz_denied');
      assert.deepEqual(getAll(r.headers, 'set-cookie'), ['a=1', 'b=2']);
      assert.equal(get(r.headers, 'x-app'), undefined);
      assert.equal(get(r.headers, 'content-type'), 'text/plain');
      assert.equal(r.upstreamRequest, undefined);
      code = StatusCode.Unauthorized;
      const r2 = await s.request({ method: 'GET', path: '/', authority: 'svc' });
      assert.equal(r2.status, 401);
      // non-zero status without http_response is still Denied (11.9)
      s.close();
    });
    await withAuthz(() => create(CheckResponseSchema, { status: create(StatusSchema, { code: 16 }) }), async (a) => {
      const s = new ExtAuthzStandIn({ authzAddress: a.address, filter: authzConfig(), upstream });
      const r = await s.request({ method: 'GET', path: '/', authority: 'svc' });
      s.close();
      assert.equal(r.outcome, 'denied');
      assert.equal(r.status, 403);
      assert.equal(r.body.length, 0);
    });
  });

  test('gRPC error and timeout → 403 ext_authz_error by default; status_on_error; failure_mode_allow + header add (11.18, 11.19)', async () => {
    await withAuthz(() => ({ code: grpc.status.INTERNAL, details: 'boom' }), async (a) => {
      const s = new ExtAuthzStandIn({ authzAddress: a.address, filter: authzConfig(), upstream });
      const r = await s.request({ method: 'GET', path: '/', authority: 'svc' });
      s.close();
      assert.equal(r.status, 403);
      assert.equal(r.details, 'ext_authz_error');
      assert.equal(r.grpcError?.code, grpc.status.INTERNAL);
      const custom = new ExtAuthzStandIn({ authzAddress: a.address, filter: authzConfig(), upstream, statusOnError: 503 });
      assert.equal((await custom.request({ method: 'GET', path: '/', authority: 'svc' })).status, 503);
      custom.close();
      const open = new ExtAuthzStandIn({ authzAddress: a.address, filter: authzConfig({ failureModeAllow: true, failureModeAllowHeaderAdd: true }), upstream });
      const r2 = await open.request({ method: 'GET', path: '/', authority: 'svc' });
      open.close();
      assert.equal(r2.status, 200);
      assert.equal(get(r2.upstreamRequest?.headers ?? [], 'x-envoy-auth-failure-mode-allowed'), 'true');
    });
    await withAuthz(() => 'hang', async (a) => {
      const s = new ExtAuthzStandIn({ authzAddress: a.address, filter: authzConfig({}, 50), upstream });
      const t0 = Date.now();
      const r = await s.request({ method: 'GET', path: '/', authority: 'svc' });
      s.close();
      assert.equal(r.status, 403);
      assert.equal(r.grpcError?.code, grpc.status.DEADLINE_EXCEEDED);
      assert.ok((a.calls[0]?.deadlineMs ?? Infinity) <= 50);
      assert.ok(Date.now() - t0 < 1000);
    });
  });

  test('gRPC downstream: denial becomes trailers-only grpc-status 7 (11.21)', async () => {
    await withAuthz(() => create(CheckResponseSchema, { status: create(StatusSchema, { code: 7 }), httpResponse: { case: 'deniedResponse', value: create(DeniedHttpResponseSchema, { body: 'no way' }) } }), async (a) => {
      const s = new ExtAuthzStandIn({ authzAddress: a.address, filter: authzConfig(), upstream });
      const r = await s.request({ method: 'POST', path: '/pkg.Svc/M', authority: 'svc', headers: [['content-type', 'application/grpc']], body: 'x' });
      s.close();
      assert.equal(r.status, 200);
      assert.equal(get(r.headers, 'grpc-status'), '7');
      assert.equal(get(r.headers, 'grpc-message'), 'no way');
      assert.equal(get(r.headers, 'content-type'), 'application/grpc');
    });
  });

  test('per-route disabled skips the check; context_extensions merged (11.3, 11.8)', async () => {
    await withAuthz(() => ok(), async (a) => {
      const off = new ExtAuthzStandIn({ authzAddress: a.address, filter: authzConfig(), upstream, perRoute: create(ExtAuthzPerRouteSchema, { override: { case: 'disabled', value: true } }) });
      const r = await off.request({ method: 'GET', path: '/', authority: 'svc' });
      off.close();
      assert.equal(r.outcome, 'skipped');
      assert.equal(a.calls.length, 0);
      const ctx = new ExtAuthzStandIn({
        authzAddress: a.address, filter: authzConfig(), upstream,
        perRoute: [
          create(ExtAuthzPerRouteSchema, { override: { case: 'checkSettings', value: { contextExtensions: { a: 'vh', b: 'vh' } } } }),
          create(ExtAuthzPerRouteSchema, { override: { case: 'checkSettings', value: { contextExtensions: { b: 'route' } } } }),
        ],
      });
      await ctx.request({ method: 'GET', path: '/', authority: 'svc' });
      ctx.close();
      assert.deepEqual(a.calls[0]?.request.attributes?.contextExtensions, { a: 'vh', b: 'route' });
    });
  });

  test('client goes away while the check is outstanding → the Check call is cancelled (11.20)', async () => {
    await withAuthz(() => 'hang', async (a) => {
      const s = new ExtAuthzStandIn({ authzAddress: a.address, filter: authzConfig({}, 0), upstream });
      const r = await s.request({ method: 'GET', path: '/', authority: 'svc' }, { abortAfterMs: 50 });
      assert.equal(r.clientAborted, true);
      assert.equal(r.checkCancelled, true);
      for (let i = 0; i < 100 && a.calls[0]?.cancelled !== true; i++) await new Promise((res) => setTimeout(res, 10));
      s.close();
      assert.equal(a.calls[0]?.cancelled, true);
      assert.equal(a.calls[0]?.deadlineMs, Infinity);
    });
  });

  test('the route\'s response_headers_to_remove: applied to the upstream\'s response, and to a denial before the Denied headers, which stay (11.22)', async () => {
    const imitating = await startUpstream(() => ({ headers: [['x-verdict', 'forged'], ['x-kept', 'yes']], body: 'ok' }));
    let denied = false;
    const deny = (): CheckResponse => create(CheckResponseSchema, {
      status: create(StatusSchema, { code: 7 }),
      httpResponse: { case: 'deniedResponse', value: create(DeniedHttpResponseSchema, { headers: [hv('x-verdict', 'real')] }) },
    });
    try {
      await withAuthz(() => (denied ? deny() : ok()), async (a) => {
        const s = new ExtAuthzStandIn({ authzAddress: a.address, filter: authzConfig({}, 30_000), upstream: imitating, routeResponseHeadersToRemove: ['x-verdict'] });
        const allowed = await s.request({ method: 'GET', path: '/', authority: 'svc' });
        assert.equal(allowed.status, 200);
        assert.equal(get(allowed.headers, 'x-verdict'), undefined, 'removed from the upstream\'s response');
        assert.equal(get(allowed.headers, 'x-kept'), 'yes');
        denied = true;
        const refused = await s.request({ method: 'GET', path: '/', authority: 'svc' });
        s.close();
        assert.equal(refused.status, 403);
        assert.equal(get(refused.headers, 'x-verdict'), 'real', 'the denial\'s own header is added after the route\'s removal');
      });
    } finally {
      await imitating.close();
    }
  });
});

export type { CheckRequest };
