// Fuzzing (fast-check) raw ext_authz Checks into a live gatehouse: random attribute contexts
// (method, path, host from the fields or only the pseudo-headers), headers as the `headers` map or
// as `header_map` with random bytes in `value` and `raw_value`, `body` against `raw_body` (truncated,
// oversized), context extensions and route metadata naming routes, random peers, and frames that are
// not protobuf or are a valid Check cut short or with a byte changed. The properties: every Check is
// answered with a CheckResponse within a generous bound (never a gRPC error, which would pass the
// request under failure_mode_allow); a denial is a documented one; an undecodable Check is denied
// 400 bad_request_headers; and no Check on the signed route is ever OK (no signature here verifies).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { signRequest } from '../../sdk/app/signing.js';
import { HeaderValueSchema, MetadataSchema, type HeaderValue } from '../../src/gen/envoy/config/core/v3/base_pb.js';
import { CheckRequestSchema, CheckResponseSchema, type CheckRequest, type CheckResponse } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { createWorld } from '../../src/protocol/signing/test-support.js';
import { endToEnd } from '../support/gatehouse.js';
import {
  AUTHORITY,
  documentedDenial,
  EXTRA_VALUE_BYTES,
  fuzzParameters,
  fuzzRoutes,
  HEADER_NAMES,
  headerText,
  LITERALLY_PROTECTED,
  METHODS,
  PATHS,
  PAY_MAX_BODY_BYTES,
  SIGNED_PATH,
  Tally,
  VALUE_BYTES,
  watchProcessFaults,
} from '../support/fuzz.js';

const RUNS = 400;
/** a Check's deadline: generous, a hang is minutes */
const CHECK_BOUND_MS = 30_000;
const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';
const enc = new TextEncoder();

type CheckInit = MessageInitShape<typeof CheckRequestSchema>;

const routeNames = fc.oneof(fc.constantFrom('open', 'pay', 'health', ''), fc.string({ maxLength: 10 }));
const text = (max: number) => fc.oneof(fc.string({ maxLength: max }), fc.uint8Array({ maxLength: max }).map((b) => Buffer.from(b).toString('latin1')));

function checkArbitrary(realHeaders: [string, string][]): fc.Arbitrary<CheckInit> {
  const pseudo = fc.record(
    { ':method': METHODS, ':path': PATHS, ':authority': fc.oneof(fc.constant(AUTHORITY), text(20)), 'content-length': fc.oneof(fc.nat({ max: PAY_MAX_BODY_BYTES * 2 }).map(String), fc.constantFrom('-1', '1e3', '10, 10')) },
    { requiredKeys: [] },
  );
  const real = fc.subarray(realHeaders);
  const extra = fc.array(fc.tuple(HEADER_NAMES, EXTRA_VALUE_BYTES.map((b) => Buffer.from(b).toString('latin1'))), { maxLength: 3 });
  const pairs = fc.tuple(pseudo, real, extra).map(([p, r, e]) => [...Object.entries(p), ...r, ...e]);
  // the two header shapes Envoy sends (11.6): the comma-joined map, or header_map with raw_value
  // (and here also value, both, or neither)
  const asMap = pairs.map((list) => ({ headers: Object.fromEntries(list) }));
  const asHeaderMap = fc.tuple(pairs, fc.array(fc.constantFrom('raw', 'value', 'both', 'neither'), { minLength: 16, maxLength: 16 }), VALUE_BYTES).map(([list, forms, other]) => ({
    headerMap: {
      headers: list.map(([key, value], i): HeaderValue => {
        const form = forms[i % forms.length];
        if (form === 'raw') return create(HeaderValueSchema, { key, rawValue: enc.encode(value) });
        if (form === 'value') return create(HeaderValueSchema, { key, value });
        if (form === 'both') return create(HeaderValueSchema, { key, value: Buffer.from(other).toString('latin1'), rawValue: enc.encode(value) });
        return create(HeaderValueSchema, { key });
      }),
    },
  }));
  const bodies = fc.oneof(
    { weight: 3, arbitrary: fc.constant({}) },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 64 }).map((rawBody) => ({ rawBody })) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: PAY_MAX_BODY_BYTES - 8, maxLength: PAY_MAX_BODY_BYTES + 64 }).map((rawBody) => ({ rawBody })) },
    { weight: 1, arbitrary: fc.string({ maxLength: 64 }).map((body) => ({ body })) },
    { weight: 1, arbitrary: fc.tuple(fc.string({ maxLength: 16 }), fc.uint8Array({ maxLength: 16 })).map(([body, rawBody]) => ({ body, rawBody })) },
  );
  const httpFields = (requiredKeys: ('method' | 'path' | 'host')[]) => fc.record(
    {
      id: fc.string({ maxLength: 8 }),
      method: METHODS,
      path: PATHS,
      host: fc.oneof(fc.constant(AUTHORITY), text(20)),
      scheme: fc.constantFrom('https', 'http', ''),
      query: fc.string({ maxLength: 10 }),
      fragment: fc.string({ maxLength: 10 }),
      size: fc.bigInt({ min: -1n, max: 1n << 40n }),
      protocol: fc.constantFrom('HTTP/1.1', 'HTTP/2', ''),
    },
    { requiredKeys },
  );
  // as Envoy fills it in (method, path, host), or any subset (the line only in pseudo-headers, or absent)
  const http = fc.oneof({ weight: 3, arbitrary: httpFields(['method', 'path', 'host']) }, { weight: 1, arbitrary: httpFields([]) });
  const httpRequest = fc.tuple(http, fc.oneof(asMap, asHeaderMap, fc.tuple(asMap, asHeaderMap).map(([a, b]) => ({ ...a, ...b }))), bodies).map(([h, headers, body]) => ({ ...h, ...headers, ...body }));
  const metadata = fc.oneof(
    routeNames.map((name) => create(MetadataSchema, { filterMetadata: { gatehouse: { route_id: name } } })),
    fc.dictionary(fc.string({ maxLength: 10 }), fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }), { maxKeys: 2 }).map((filterMetadata) => create(MetadataSchema, { filterMetadata: filterMetadata as never })),
  );
  const peer = fc.record(
    {
      address: fc.record({ address: fc.record({ case: fc.constant('socketAddress' as const), value: fc.record({ address: text(20), portValue: fc.nat({ max: 70_000 }) }) }) }),
      principal: text(30),
      certificate: fc.oneof(text(60), fc.constant('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')),
      service: text(10),
    },
    { requiredKeys: [] },
  );
  const attributeFields = (requiredKeys: 'request'[]) => fc.record(
    {
      source: peer,
      destination: peer,
      request: fc.oneof({ weight: 6, arbitrary: fc.record({ http: httpRequest }) }, { weight: 1, arbitrary: fc.constant({}) }),
      contextExtensions: fc.dictionary(fc.oneof(fc.constant('gatehouse_route_id'), fc.string({ maxLength: 10 })), fc.oneof(routeNames, text(10)), { maxKeys: 3 }),
      metadataContext: metadata,
      routeMetadataContext: metadata,
    },
    { requiredKeys },
  );
  const attributes = fc.oneof({ weight: 6, arbitrary: attributeFields(['request']) }, { weight: 1, arbitrary: attributeFields([]) });
  return fc.oneof({ weight: 12, arbitrary: fc.record({ attributes }).map((a) => a as CheckInit) }, { weight: 1, arbitrary: fc.constant({}) });
}

interface CheckFrame {
  readonly bytes: Buffer;
  readonly decoded: CheckRequest | undefined;
}

function decodeLikeGatehouse(bytes: Uint8Array): CheckRequest | undefined {
  try {
    return fromBinary(CheckRequestSchema, bytes, { readUnknownFields: false });
  } catch {
    return undefined;
  }
}

function frameArbitrary(check: fc.Arbitrary<CheckInit>): fc.Arbitrary<CheckFrame> {
  const whole = check.map((init) => Buffer.from(toBinary(CheckRequestSchema, create(CheckRequestSchema, init))));
  const mutated = fc.tuple(whole, fc.constantFrom('cut', 'flip', 'insert'), fc.nat(), fc.integer({ min: 1, max: 255 })).map(([bytes, how, at, value]) => {
    if (bytes.length === 0) return Buffer.from([value]);
    const i = at % bytes.length;
    if (how === 'cut') return bytes.subarray(0, i);
    const copy = Buffer.from(bytes);
    if (how === 'flip') {
      copy[i] = copy[i]! ^ value;
      return copy;
    }
    return Buffer.concat([bytes.subarray(0, i), Buffer.from([value]), bytes.subarray(i)]);
  });
  const junk = fc.uint8Array({ maxLength: 48 }).map((b) => Buffer.from(b));
  return fc.oneof({ weight: 10, arbitrary: whole }, { weight: 3, arbitrary: mutated }, { weight: 1, arbitrary: junk }).map((bytes) => {
    const decoded = decodeLikeGatehouse(bytes);
    const http = decoded?.attributes?.request?.http;
    return { bytes, decoded, [fc.toStringMethod]: () => `${decoded === undefined ? 'undecodable' : `${http?.method ?? ''} ${http?.path ?? ''}`} ${bytes.toString('base64')}` };
  });
}

/** The request line as the adapter reads it: the http fields, else the pseudo-headers (11.6). */
function requestPath(check: CheckRequest): string | undefined {
  const http = check.attributes?.request?.http;
  if (!http) return undefined;
  if (http.path) return http.path;
  if (http.headerMap && http.headerMap.headers.length > 0) {
    const entry = http.headerMap.headers.find((h) => h.key.toLowerCase() === ':path');
    return entry === undefined ? undefined : headerText(entry);
  }
  return Object.entries(http.headers).find(([name]) => name.toLowerCase() === ':path')?.[1];
}

type CheckResult = { readonly answer: CheckResponse } | { readonly error: grpc.ServiceError };

function check(client: grpc.Client, bytes: Buffer): Promise<CheckResult> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(CHECK_PATH, (b: Buffer) => b, (b: Buffer) => fromBinary(CheckResponseSchema, b), bytes, { deadline: Date.now() + CHECK_BOUND_MS }, (error, value) => {
      resolve(error ? { error } : { answer: value! });
    });
  });
}

test('raw ext_authz Checks with random attribute contexts, header shapes, bodies and undecodable bytes: always a CheckResponse, only documented denials, never OK on the signed route (fast-check)', async (t) => {
  const faults = watchProcessFaults(t);
  const world = await createWorld({ now: Math.floor(Date.now() / 1000) });
  const e2e = await endToEnd(t, await fuzzRoutes(world));
  assert.deepEqual(await e2e.gatehouse.deps.stores.devices.put(world.device), { ok: true });
  const client = new grpc.Client(`127.0.0.1:${e2e.gatehouse.grpcPort}`, grpc.credentials.createInsecure());
  t.after(() => { client.close(); });
  const real = await signRequest({ method: 'GET', authority: AUTHORITY, path: SIGNED_PATH, query: '' }, { credential: world.credential, signer: world.ephemeralSigner, now: Math.floor(Date.now() / 1000) });
  const realHeaders = Object.entries(real);

  const reasons = new Tally();
  let checks = 0;
  let undecodable = 0;
  let onSignedRoute = 0;
  let allowedOpen = 0;
  await fc.assert(
    fc.asyncProperty(frameArbitrary(checkArbitrary(realHeaders)), async (frame) => {
      checks++;
      const result = await check(client, frame.bytes);
      assert.ok('answer' in result, 'error' in result ? `a gRPC error, not a CheckResponse: ${grpc.status[result.error.code]} ${result.error.details}` : '');
      const answer = result.answer;
      const metadata = answer.dynamicMetadata?.['gatehouse'] as Record<string, unknown> | undefined;
      const path = frame.decoded === undefined ? undefined : requestPath(frame.decoded);
      const protectedRoute = (path !== undefined && LITERALLY_PROTECTED.test(path)) || metadata?.['route_id'] === 'pay';
      if (protectedRoute) onSignedRoute++;
      if (answer.httpResponse.case === 'okResponse' || answer.status?.code === 0) {
        assert.ok(!protectedRoute, `OK on the signed route (${path ?? ''}, metadata ${JSON.stringify(metadata)})`);
        assert.ok(frame.decoded !== undefined, 'OK for a Check that does not decode');
        assert.equal(answer.httpResponse.case, 'okResponse', 'an OK status carries an ok_response');
        allowedOpen++;
        return;
      }
      assert.equal(answer.httpResponse.case, 'deniedResponse', `status ${answer.status?.code} without a denied_response`);
      const denied = answer.httpResponse.case === 'deniedResponse' ? answer.httpResponse.value : undefined;
      const denial = documentedDenial(denied?.status?.code ?? 0, denied?.headers.find((h) => h.header?.key === 'x-gatehouse-reason')?.header?.value);
      assert.ok(denial.ok, denial.ok ? '' : denial.why);
      reasons.add(denial.reason);
      if (frame.decoded === undefined) {
        undecodable++;
        assert.equal(denial.reason, 'bad_request_headers', 'an undecodable Check is denied 400 bad_request_headers');
      }
    }),
    fuzzParameters(RUNS),
  );
  faults.assertNone();

  // gatehouse still serves over ext_authz: an open request and the real signed request pass
  const open = await e2e.authz.request({ method: 'GET', path: '/open/after', authority: AUTHORITY });
  assert.equal(open.outcome, 'ok', 'an open request passes after the fuzzing');
  const signed = await e2e.authz.request({ method: 'GET', path: SIGNED_PATH, authority: AUTHORITY, headers: realHeaders });
  assert.equal(signed.outcome, 'ok', 'the real signed request passes after the fuzzing');
  assert.ok(onSignedRoute > RUNS / 20, `the signed route was reached (${onSignedRoute} Checks)`);
  t.diagnostic(`fuzz ext_authz: ${checks} Checks (${undecodable} undecodable); on the signed route ${onSignedRoute}, 0 allowed; open route allowed ${allowedOpen}; denials: ${reasons.toString()}`);
});

// Found by the fuzzing above (minimised: `CgA=`, a Check whose attributes are empty): a Check with no
// method or path was failed INVALID_ARGUMENT, which Envoy passes under failure_mode_allow: true.
test('a Check without a method or a path (empty attributes; an HTTP/2 CONNECT has no :path) is denied 400 bad_request_headers, never a gRPC error', async (t) => {
  const world = await createWorld({ now: Math.floor(Date.now() / 1000) });
  const e2e = await endToEnd(t, await fuzzRoutes(world));
  const client = new grpc.Client(`127.0.0.1:${e2e.gatehouse.grpcPort}`, grpc.credentials.createInsecure());
  t.after(() => { client.close(); });
  const checks: [string, CheckInit][] = [
    ['empty attributes (the minimised case)', { attributes: {} }],
    ['a CONNECT: method and authority, no path', { attributes: { request: { http: { method: 'CONNECT', host: AUTHORITY, headers: { ':method': 'CONNECT', ':authority': AUTHORITY } } } } }],
    ['a path and no method', { attributes: { request: { http: { path: '/pay/transfer', host: AUTHORITY } } } }],
  ];
  for (const [what, init] of checks) {
    const result = await check(client, Buffer.from(toBinary(CheckRequestSchema, create(CheckRequestSchema, init))));
    assert.ok('answer' in result, `${what}: ${'error' in result ? result.error.details : ''}`);
    const answer = result.answer;
    assert.notEqual(answer.status?.code, 0, `${what}: not OK`);
    const denied = answer.httpResponse.case === 'deniedResponse' ? answer.httpResponse.value : undefined;
    assert.equal(denied?.status?.code, 400, what);
    assert.equal(denied?.headers.find((h) => h.header?.key === 'x-gatehouse-reason')?.header?.value, 'bad_request_headers', what);
  }
  assert.ok(e2e.logs.some((l) => l['msg'] === 'ext_authz Check is malformed: denied' && String(l['err']).includes('lacks attributes.request.http.path')), 'the log says what was missing');
});
