// Fuzzing (fast-check) raw ext_proc streams into a live gatehouse: random ProcessingRequest oneofs,
// header maps with random bytes in `value` and `raw_value` (both, neither, not UTF-8, huge), random
// attributes and metadata_context, truncated and oversized bodies, random orders and end_of_stream
// flags, and frames that are not protobuf at all. The properties: every stream ends (an answer or a
// gRPC status) within a generous bound, never INTERNAL; no unhandled rejection; every immediate
// response is a documented denial; nothing but a denial answers a request on the signed route (no
// signature in these streams verifies); and gatehouse still serves afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { create, fromBinary, toBinary, type JsonObject, type MessageInitShape } from '@bufbuild/protobuf';
import { signRequest } from '../../sdk/app/signing.js';
import { HeaderValueSchema, MetadataSchema, type HeaderValue } from '../../src/gen/envoy/config/core/v3/base_pb.js';
import { ProcessingRequestSchema, type ProcessingRequest, type ProcessingResponse } from '../../src/gen/envoy/service/ext_proc/v3/external_processor_pb.js';
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
  runExtProcStream,
  SIGNED_PATH,
  STREAM_BOUND_MS,
  Tally,
  VALUE_BYTES,
  watchProcessFaults,
} from '../support/fuzz.js';

const RUNS = 400;
const SIGNED_BODY_RUNS = 200;
const ATTRIBUTES_KEY = 'envoy.filters.http.ext_proc';
const enc = new TextEncoder();

/** How a header entry carries its text: Envoy's raw_value, the older value, both (equal or not), neither. */
const headerEntry = (key: fc.Arbitrary<string>, text: fc.Arbitrary<string>): fc.Arbitrary<HeaderValue> =>
  fc.record({ key, text, form: fc.constantFrom('raw', 'raw', 'value', 'both', 'rawOther', 'valueOther', 'neither'), other: VALUE_BYTES }).map(({ key, text, form, other }) => {
    switch (form) {
      case 'raw': return create(HeaderValueSchema, { key, rawValue: enc.encode(text) });
      case 'value': return create(HeaderValueSchema, { key, value: text });
      case 'both': return create(HeaderValueSchema, { key, value: text, rawValue: enc.encode(text) });
      case 'rawOther': return create(HeaderValueSchema, { key, value: Buffer.from(other).toString('latin1'), rawValue: enc.encode(text) });
      case 'valueOther': return create(HeaderValueSchema, { key, value: text, rawValue: other });
      case 'neither': return create(HeaderValueSchema, { key });
    }
  });

const randomEntry = fc.tuple(HEADER_NAMES, EXTRA_VALUE_BYTES, fc.option(fc.string({ maxLength: 30 }), { nil: undefined })).map(([key, rawValue, value]) => create(HeaderValueSchema, { key, rawValue, ...(value === undefined ? {} : { value }) }));

const structValue = fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }) as fc.Arbitrary<JsonObject>;
const routeNames = fc.oneof(fc.constantFrom('open', 'pay', 'health', ''), fc.string({ maxLength: 10 }));
const envoyAttributes = fc.record(
  {
    'xds.route_name': routeNames,
    'source.address': fc.oneof(fc.constant('10.0.0.1:443'), fc.string({ maxLength: 20 })),
    'connection.uri_san_peer_certificate': fc.string({ maxLength: 40 }),
    'connection.subject_peer_certificate': fc.string({ maxLength: 40 }),
    'connection.sha256_peer_certificate_digest': fc.oneof(fc.stringMatching(/^[0-9a-f]{64}$/), fc.string({ maxLength: 10 })),
  },
  { requiredKeys: [] },
) as fc.Arbitrary<JsonObject>;
const attributes = fc.option(fc.oneof(envoyAttributes.map((a) => ({ [ATTRIBUTES_KEY]: a })), fc.dictionary(fc.string({ maxLength: 30 }), structValue, { maxKeys: 2 })), { nil: undefined });
const metadataContext = fc.option(
  fc.oneof(
    routeNames.map((name) => create(MetadataSchema, { filterMetadata: { gatehouse: { route_id: name } } })),
    fc.dictionary(fc.string({ maxLength: 12 }), structValue, { maxKeys: 2 }).map((filterMetadata) => create(MetadataSchema, { filterMetadata })),
  ),
  { nil: undefined },
);

const bodyBytes = fc.oneof(
  { weight: 4, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: PAY_MAX_BODY_BYTES - 8, maxLength: PAY_MAX_BODY_BYTES + 64 }) },
);

type Init = MessageInitShape<typeof ProcessingRequestSchema>;

function messageArbitrary(realHeaders: [string, string][]): { requestHeaders: fc.Arbitrary<Init>; any: fc.Arbitrary<Init>; ordered: fc.Arbitrary<Init[]> } {
  const realEntries = fc.subarray(realHeaders).map((pairs) => pairs.map(([key, value]) => create(HeaderValueSchema, { key, rawValue: enc.encode(value) })));
  const pseudo = (key: string, text: fc.Arbitrary<string>) => fc.option(headerEntry(fc.constant(key), text), { freq: 6, nil: undefined });
  const pseudoHeaders = fc.tuple(
    pseudo(':method', METHODS),
    pseudo(':path', PATHS),
    pseudo(':authority', fc.oneof(fc.constant(AUTHORITY), fc.string({ maxLength: 20 }))),
    pseudo(':scheme', fc.constantFrom('https', 'http', '')),
    pseudo('content-length', fc.oneof(fc.nat({ max: PAY_MAX_BODY_BYTES * 2 }).map(String), fc.constantFrom('-1', '1e3', '10, 10', ' 5', '99999999999999999999'))),
  ).map((entries) => entries.filter((e): e is HeaderValue => e !== undefined));
  const extra = fc.array(randomEntry, { maxLength: 3 });
  // as Envoy sends them (pseudo-headers first, in raw_value), with real signing headers and extras;
  // or the same entries in any order and subset
  const plausibleList = fc.tuple(
    fc.tuple(METHODS, PATHS, fc.oneof({ weight: 4, arbitrary: fc.constant(AUTHORITY) }, fc.string({ maxLength: 20 }))).map(([method, path, authority]) =>
      ([[':method', method], [':path', path], [':authority', authority], [':scheme', 'https']] as const).map(([key, value]) => create(HeaderValueSchema, { key, rawValue: enc.encode(value) })),
    ),
    realEntries,
    extra,
  ).map(([pseudoEntries, real, more]) => [...pseudoEntries, ...real, ...more]);
  const hostileList = fc
    .tuple(pseudoHeaders, realEntries, extra)
    .chain(([p, real, more]) => fc.shuffledSubarray([...p, ...real, ...more]));
  const requestHeaderList = fc.oneof({ weight: 3, arbitrary: plausibleList }, { weight: 2, arbitrary: hostileList }).map((headers) => ({ headers }));
  const common = { attributes, metadataContext, observabilityMode: fc.boolean() };
  const withCommon = (request: fc.Arbitrary<Init['request']>): fc.Arbitrary<Init> =>
    fc.record({ request, ...common }, { requiredKeys: ['request'] }).map((r) => ({ ...r, attributes: r.attributes ?? {} }) as Init);
  const requestHeaders = withCommon(fc.record({ headers: requestHeaderList, endOfStream: fc.boolean(), attributes: fc.option(structValue.map((s) => ({ x: s })), { nil: undefined }) }).map((value) => ({ case: 'requestHeaders' as const, value: { ...value, attributes: value.attributes ?? {} } })));
  const body = (which: 'requestBody' | 'responseBody') => withCommon(fc.record({ body: bodyBytes, endOfStream: fc.boolean() }).map((value) => ({ case: which, value })));
  const trailers = (which: 'requestTrailers' | 'responseTrailers') => withCommon(fc.array(randomEntry, { maxLength: 3 }).map((headers) => ({ case: which, value: { trailers: { headers } } })));
  const responseHeaders = withCommon(
    fc.record({ status: headerEntry(fc.constant(':status'), fc.oneof(fc.constantFrom('200', '204', '500', 'abc', ''), fc.string({ maxLength: 5 }))), extra: fc.array(randomEntry, { maxLength: 4 }), endOfStream: fc.boolean() })
      .map(({ status, extra, endOfStream }) => ({ case: 'responseHeaders' as const, value: { headers: { headers: [status, ...extra] }, endOfStream } })),
  );
  const none = withCommon(fc.constant({ case: undefined }));
  const any = fc.oneof(requestHeaders, body('requestBody'), trailers('requestTrailers'), responseHeaders, body('responseBody'), trailers('responseTrailers'), none);
  // Envoy's own order, each message optional: gets past the first message often enough to matter
  const ordered = fc
    .tuple(requestHeaders, fc.option(body('requestBody')), fc.option(trailers('requestTrailers'), { freq: 4 }), fc.option(responseHeaders), fc.option(body('responseBody')), fc.option(trailers('responseTrailers'), { freq: 4 }))
    .map((messages) => messages.filter((m): m is Init => m !== null));
  return { requestHeaders, any, ordered };
}

interface Frame {
  readonly bytes: Buffer;
  /** what gatehouse decodes from it, or undefined when it does not decode */
  readonly decoded: ProcessingRequest | undefined;
}

function decodeLikeGatehouse(bytes: Uint8Array): ProcessingRequest | undefined {
  try {
    return fromBinary(ProcessingRequestSchema, bytes, { readUnknownFields: false });
  } catch {
    return undefined;
  }
}

function describe(message: ProcessingRequest | undefined): string {
  if (message === undefined) return 'undecodable';
  const request = message.request;
  if (request.case === 'requestHeaders' || request.case === 'responseHeaders') {
    return `${request.case}(eos ${request.value.endOfStream}: ${(request.value.headers?.headers ?? []).map((h) => `${h.key}=${JSON.stringify(headerText(h).slice(0, 40))}`).join(' ')})`;
  }
  if (request.case === 'requestBody' || request.case === 'responseBody') return `${request.case}(${request.value.body.length} bytes, eos ${request.value.endOfStream})`;
  return String(request.case);
}

const encoded = (init: Init): Buffer => Buffer.from(toBinary(ProcessingRequestSchema, create(ProcessingRequestSchema, init)));

/** A message as sent, cut short, with a byte changed or inserted; or bytes that were never one. */
function frameArbitrary(message: fc.Arbitrary<Init>): fc.Arbitrary<Frame> {
  const whole = message.map(encoded);
  const mutated = fc.tuple(whole, fc.constantFrom('cut', 'flip', 'insert'), fc.nat(), fc.integer({ min: 1, max: 255 })).map(([bytes, how, at, value]) => {
    if (bytes.length === 0) return Buffer.from([value]);
    const i = at % bytes.length;
    if (how === 'cut') return bytes.subarray(0, i);
    if (how === 'flip') {
      const copy = Buffer.from(bytes);
      copy[i] = copy[i]! ^ value;
      return copy;
    }
    return Buffer.concat([bytes.subarray(0, i), Buffer.from([value]), bytes.subarray(i)]);
  });
  const junk = fc.uint8Array({ maxLength: 48 }).map((b) => Buffer.from(b));
  return fc.oneof({ weight: 16, arbitrary: whole }, { weight: 2, arbitrary: mutated }, { weight: 1, arbitrary: junk }).map((bytes) => {
    const decoded = decodeLikeGatehouse(bytes);
    // a failure prints each frame as its reading and its bytes (base64), enough to replay it
    return { bytes, decoded, [fc.toStringMethod]: () => `${describe(decoded)} ${bytes.toString('base64')}` };
  });
}

const gatehouseMetadata = (answer: ProcessingResponse | undefined): Record<string, unknown> | undefined => answer?.dynamicMetadata?.['gatehouse'] as Record<string, unknown> | undefined;

/** The stream's request is on the signed route by its own first message (whatever gatehouse says). */
function literallyProtected(frames: readonly Frame[]): boolean {
  const first = frames[0]?.decoded;
  if (first?.request.case !== 'requestHeaders') return false;
  return (first.request.value.headers?.headers ?? []).some((h) => h.key.toLowerCase() === ':path' && LITERALLY_PROTECTED.test(headerText(h)));
}

const END_CODES = new Set([grpc.status.OK, grpc.status.INVALID_ARGUMENT, grpc.status.FAILED_PRECONDITION, grpc.status.RESOURCE_EXHAUSTED]);

test('raw ext_proc streams of random, reordered, truncated and undecodable messages: every stream ends, only documented denials, nothing allowed on the signed route (fast-check)', async (t) => {
  const faults = watchProcessFaults(t);
  const world = await createWorld({ now: Math.floor(Date.now() / 1000) });
  const e2e = await endToEnd(t, await fuzzRoutes(world));
  assert.deepEqual(await e2e.gatehouse.deps.stores.devices.put(world.device), { ok: true });
  const client = new grpc.Client(`127.0.0.1:${e2e.gatehouse.grpcPort}`, grpc.credentials.createInsecure());
  t.after(() => { client.close(); });
  // a real signed request for SIGNED_PATH: its headers are mixed into requests for other paths
  const real = await signRequest({ method: 'GET', authority: AUTHORITY, path: SIGNED_PATH, query: '' }, { credential: world.credential, signer: world.ephemeralSigner, now: Math.floor(Date.now() / 1000) });
  const realHeaders = Object.entries(real);
  const messages = messageArbitrary(realHeaders);
  const frames = fc.oneof(
    { weight: 3, arbitrary: messages.ordered.chain((ordered) => fc.tuple(...ordered.map((m) => frameArbitrary(fc.constant(m))))) },
    { weight: 2, arbitrary: fc.tuple(frameArbitrary(messages.requestHeaders), fc.array(frameArbitrary(messages.any), { maxLength: 5 })).map(([first, rest]) => [first, ...rest]) },
    { weight: 1, arbitrary: fc.array(frameArbitrary(messages.any), { minLength: 1, maxLength: 5 }) },
  );

  const reasons = new Tally();
  const ends = new Tally();
  let streams = 0;
  let sentFrames = 0;
  let allowedOpen = 0;
  let protectedStreams = 0;
  await fc.assert(
    fc.asyncProperty(frames, async (sent) => {
      streams++;
      sentFrames += sent.length;
      const { answers, end } = await runExtProcStream(client, sent.map((f) => f.bytes));
      assert.notEqual(end, 'no end', `the stream did not end within ${STREAM_BOUND_MS} ms of its half-close`);
      if (end === 'no end') return;
      ends.add(grpc.status[end.code]);
      assert.ok(END_CODES.has(end.code), `stream ended ${grpc.status[end.code]}: ${end.details}`);
      const onSignedRoute = literallyProtected(sent) || gatehouseMetadata(answers[0])?.['route_id'] === 'pay';
      if (onSignedRoute) protectedStreams++;
      for (const answer of answers) {
        if (answer.response.case === 'immediateResponse') {
          const immediate = answer.response.value;
          const reason = immediate.headers?.setHeaders.find((h) => h.header?.key === 'x-gatehouse-reason')?.header;
          const denial = documentedDenial(immediate.status?.code ?? 0, reason === undefined ? undefined : headerText(reason));
          assert.ok(denial.ok, denial.ok ? '' : denial.why);
          reasons.add(denial.reason);
          continue;
        }
        assert.ok(!onSignedRoute, `a ${answer.response.case} continue on the signed route (metadata ${JSON.stringify(answer.dynamicMetadata)})`);
        if (answer.response.case === 'requestHeaders') allowedOpen++;
      }
    }),
    fuzzParameters(RUNS),
  );
  faults.assertNone();

  // gatehouse still serves: an open request and the real signed request pass
  const open = await e2e.envoy.request({ method: 'GET', path: '/open/after', authority: AUTHORITY });
  assert.equal(open.status, 200, 'an open request passes after the fuzzing');
  const signed = await e2e.envoy.request({ method: 'GET', path: SIGNED_PATH, authority: AUTHORITY, headers: realHeaders });
  assert.equal(signed.status, 200, 'the real signed request passes after the fuzzing');
  assert.ok(protectedStreams > RUNS / 20, `the signed route was reached (${protectedStreams} streams)`);
  t.diagnostic(`fuzz ext_proc: ${streams} streams, ${sentFrames} frames; on the signed route ${protectedStreams}, 0 let through; open route allowed ${allowedOpen}; denials: ${reasons.toString()}; stream ends: ${ends.toString()}`);
});

test('a ProcessingRequest above gRPC\'s 4 MiB receive limit ends its stream RESOURCE_EXHAUSTED, and gatehouse keeps serving', async (t) => {
  const faults = watchProcessFaults(t);
  const world = await createWorld({ now: Math.floor(Date.now() / 1000) });
  const e2e = await endToEnd(t, await fuzzRoutes(world));
  const client = new grpc.Client(`127.0.0.1:${e2e.gatehouse.grpcPort}`, grpc.credentials.createInsecure());
  t.after(() => { client.close(); });
  const huge = encoded({ request: { case: 'requestBody', value: { body: new Uint8Array(5 * 1024 * 1024), endOfStream: true } } });
  const { answers, end } = await runExtProcStream(client, [huge]);
  assert.notEqual(end, 'no end');
  assert.equal(end === 'no end' ? undefined : end.code, grpc.status.RESOURCE_EXHAUSTED);
  assert.equal(answers.length, 0);
  const open = await e2e.envoy.request({ method: 'GET', path: '/open/after', authority: AUTHORITY });
  assert.equal(open.status, 200);
  faults.assertNone();
});

/** A body message of a signed POST's, and whether its bytes are the signed body exactly. */
interface BodyFrame {
  readonly what: string;
  readonly bytes: Buffer;
  readonly body: Buffer | undefined;
}

/**
 * A signed POST whose headers verify (the signature covers its Content-Digest), then body messages
 * as Envoy might send them or an attacker might: the signed body whole, split into chunks with any
 * end_of_stream flags, cut short, extended, a byte changed, empty, twice; trailers; response headers
 * before or after; with its content-length right, wrong or absent. The property: a request body
 * passes only when one message carried exactly the signed bytes, and nothing of the upstream's answer
 * is released before it did.
 */
test('a signed POST over raw ext_proc: its body passes only as exactly the signed bytes, whatever the body messages, flags and order (fast-check)', async (t) => {
  const faults = watchProcessFaults(t);
  const world = await createWorld({ now: Math.floor(Date.now() / 1000) });
  const e2e = await endToEnd(t, await fuzzRoutes(world));
  assert.deepEqual(await e2e.gatehouse.deps.stores.devices.put(world.device), { ok: true });
  const client = new grpc.Client(`127.0.0.1:${e2e.gatehouse.grpcPort}`, grpc.credentials.createInsecure());
  t.after(() => { client.close(); });
  const path = '/pay/transfer';
  const entries = (pairs: [string, string][]) => pairs.map(([key, value]) => create(HeaderValueSchema, { key, rawValue: enc.encode(value) }));
  const bodyFrame = (what: string, body: Buffer, endOfStream: boolean): BodyFrame => ({ what: `${what} (${body.length} bytes, eos ${endOfStream})`, bytes: encoded({ request: { case: 'requestBody', value: { body, endOfStream } } }), body });
  const other = (what: string, init: Init): BodyFrame => ({ what, bytes: encoded(init), body: undefined });

  const input = fc.record({
    signed: fc.uint8Array({ minLength: 1, maxLength: 300 }).map((b) => Buffer.from(b)),
    contentLength: fc.constantFrom('right', 'right', 'wrong', 'absent', 'twice'),
    at: fc.nat(),
    xor: fc.integer({ min: 1, max: 255 }),
    shape: fc.constantFrom('whole', 'whole without eos', 'two chunks', 'two chunks, both eos', 'cut short', 'extended', 'a byte changed', 'empty', 'whole twice', 'trailers first', 'response first', 'whole, then trailers and response'),
    extra: fc.uint8Array({ minLength: 1, maxLength: 16 }).map((b) => Buffer.from(b)),
  });

  const outcomes = new Tally();
  let streams = 0;
  let passed = 0;
  await fc.assert(
    fc.asyncProperty(input, async ({ signed, contentLength, at, xor, shape, extra }) => {
      streams++;
      const signature = await signRequest({ method: 'POST', authority: AUTHORITY, path, query: '', body: signed }, { credential: world.credential, signer: world.ephemeralSigner, now: Math.floor(Date.now() / 1000) });
      const length = String(signed.length);
      const lengthHeaders: [string, string][] = contentLength === 'right' ? [['content-length', length]] : contentLength === 'wrong' ? [['content-length', String(signed.length + 1)]] : contentLength === 'twice' ? [['content-length', length], ['content-length', length]] : [];
      const headersFrame = encoded({ request: { case: 'requestHeaders', value: { headers: { headers: entries([[':method', 'POST'], [':path', path], [':authority', AUTHORITY], [':scheme', 'https'], ['content-type', 'application/octet-stream'], ...lengthHeaders, ...Object.entries(signature)]) }, endOfStream: false } } });
      const i = 1 + (at % signed.length);
      const changed = Buffer.from(signed);
      changed[i - 1] = changed[i - 1]! ^ xor;
      const response = other('response_headers', { request: { case: 'responseHeaders', value: { headers: { headers: entries([[':status', '200']]) }, endOfStream: true } } });
      const trailers = other('request_trailers', { request: { case: 'requestTrailers', value: { trailers: { headers: entries([['x-t', '1']]) } } } });
      const frames: BodyFrame[] = {
        'whole': [bodyFrame('whole', signed, true), response],
        'whole without eos': [bodyFrame('whole', signed, false), response],
        'two chunks': [bodyFrame('first chunk', signed.subarray(0, i), false), bodyFrame('second chunk', signed.subarray(i), true), response],
        'two chunks, both eos': [bodyFrame('first chunk', signed.subarray(0, i), true), bodyFrame('second chunk', signed.subarray(i), true), response],
        'cut short': [bodyFrame('cut', signed.subarray(0, i - 1), true), response],
        'extended': [bodyFrame('extended', Buffer.concat([signed, extra]), true), response],
        'a byte changed': [bodyFrame('changed', changed, true), response],
        'empty': [bodyFrame('empty', Buffer.alloc(0), true), response],
        'whole twice': [bodyFrame('whole', signed, false), bodyFrame('again', signed, true), response],
        'trailers first': [trailers, bodyFrame('whole', signed, true), response],
        'response first': [response, bodyFrame('whole', signed, true)],
        'whole, then trailers and response': [bodyFrame('whole', signed, false), trailers, response],
      }[shape];
      const { answers, end } = await runExtProcStream(client, [headersFrame, ...frames.map((f) => f.bytes)]);
      assert.notEqual(end, 'no end', `the stream did not end within ${STREAM_BOUND_MS} ms of its half-close`);
      let bodyPassed = false;
      answers.forEach((answer, n) => {
        const frame = n === 0 ? undefined : frames[n - 1]!;
        const what = frame?.what ?? 'request_headers';
        if (answer.response.case === 'immediateResponse') {
          const immediate = answer.response.value;
          const reason = immediate.headers?.setHeaders.find((h) => h.header?.key === 'x-gatehouse-reason')?.header;
          const denial = documentedDenial(immediate.status?.code ?? 0, reason === undefined ? undefined : headerText(reason));
          assert.ok(denial.ok, `${shape}, ${what}: ${denial.ok ? '' : denial.why}`);
          outcomes.add(denial.reason);
          return;
        }
        if (answer.response.case === 'requestBody' && frame?.body !== undefined && frame.body.length > 0) {
          assert.ok(frame.body.equals(signed) && !bodyPassed, `${shape}: ${what} passed, not the signed body in one message`);
          bodyPassed = true;
        }
        if (answer.response.case === 'responseHeaders') {
          assert.ok(bodyPassed, `${shape}: the upstream's answer released before the signed body passed`);
          passed++;
          outcomes.add('passed');
        }
      });
    }),
    fuzzParameters(SIGNED_BODY_RUNS),
  );
  faults.assertNone();
  assert.ok(passed > 0, 'some well-formed streams pass (the property is not vacuous)');
  t.diagnostic(`fuzz signed bodies: ${streams} streams, ${passed} passed with exactly the signed body, 0 with other bytes; outcomes: ${outcomes.toString()}`);
});
