// Fuzzing (fast-check) e2ee envelopes through the whole route, over ext_proc: a valid envelope
// sealed by an enrolled device (AES-128-GCM or ChaCha20-Poly1305), then mutated — a byte flipped
// (biased to the header and encapsulated key), cut short, extended, bytes inserted or overwritten,
// spliced with another envelope, replaced by random bytes, or sent with another method or path than
// it was sealed for — and a content type that still names e2ee (or not). On `sealed` (e2ee alone)
// and on `both` (signed, then e2ee), where the request is signed over the mutated body so that only
// e2ee stands between it and the upstream. The property: every mutation is refused with a
// documented denial, never an exception, never the upstream; valid envelopes still pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { create, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { createE2eeClient, generateDeviceKey, type E2eeClient, type SealedRequest } from '../../sdk/app/e2ee.js';
import { signRequest } from '../../sdk/app/signing.js';
import { HeaderValueSchema } from '../../src/gen/envoy/config/core/v3/base_pb.js';
import { ProcessingRequestSchema } from '../../src/gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import { E2EE_REQUEST_MEDIA_TYPE, E2EE_RESPONSE_MEDIA_TYPE, x25519RawPrivateKey } from '../../src/protocol/e2ee/index.js';
import { fixtureGatewayKey } from '../../src/protocol/e2ee/fixtures.js';
import { createWorld } from '../../src/protocol/signing/test-support.js';
import { get } from '../harness/helpers.js';
import type { ClientRequest } from '../harness/filter-manager.js';
import { endToEnd } from '../support/gatehouse.js';
import { documentedDenial, fuzzParameters, runExtProcStream, STREAM_BOUND_MS, Tally, watchProcessFaults } from '../support/fuzz.js';
import { signedFilterConfig } from '../support/signed-config.js';
import { tempDir } from '../support/temp-dir.js';

const RUNS = 200;
const RESPONSE_RUNS = 200;
const AUDIENCE = 'api.superapp.example';
const AUTHORITY = 'gateway.internal:8443';
const KEYS_PATH = '/.well-known/gatehouse-e2ee-keys';
const MAX_REQUEST_BYTES = 4096;
const MAX_RESPONSE_BYTES = 2048;
const BODY = '{"amount":"12.34","currency":"EUR","to":"acct-9"}';
const nowSeconds = (): number => Math.floor(Date.now() / 1000);

type Mutation =
  | { readonly kind: 'flip'; readonly at: number; readonly xor: number }
  | { readonly kind: 'cut'; readonly at: number }
  | { readonly kind: 'append'; readonly bytes: Uint8Array }
  | { readonly kind: 'insert'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: 'overwrite'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: 'splice'; readonly at: number }
  | { readonly kind: 'random'; readonly bytes: Uint8Array }
  | { readonly kind: 'relocate'; readonly method: string; readonly path: string };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.oneof(fc.nat({ max: 80 }), fc.nat()), xor: fc.integer({ min: 1, max: 255 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('append' as const), bytes: fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 32 }), fc.uint8Array({ minLength: MAX_REQUEST_BYTES, maxLength: MAX_REQUEST_BYTES + 16 })) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('overwrite' as const), at: fc.oneof(fc.nat({ max: 80 }), fc.nat()), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('splice' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('random' as const), bytes: fc.uint8Array({ maxLength: 200 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('relocate' as const),
      method: fc.constantFrom('POST', 'PUT', 'PATCH', 'post'),
      path: fc.constantFrom('transfers', 'transfers/', 'Transfers', 'transfers?x=1', 'other', 'transfers%2F'),
    }),
  },
);

/** The mutated body (and request line), or undefined when the mutation left the envelope as it was. */
function mutate(envelope: Buffer, other: Buffer, m: Mutation, method: string, path: string): { body: Buffer; method: string; path: string } | undefined {
  const at = (n: number): number => (envelope.length === 0 ? 0 : n % envelope.length);
  let body: Buffer;
  switch (m.kind) {
    case 'flip':
      body = Buffer.from(envelope);
      body[at(m.at)] = body[at(m.at)]! ^ m.xor;
      break;
    case 'cut':
      body = envelope.subarray(0, at(m.at));
      break;
    case 'append':
      body = Buffer.concat([envelope, m.bytes]);
      break;
    case 'insert':
      body = Buffer.concat([envelope.subarray(0, at(m.at)), m.bytes, envelope.subarray(at(m.at))]);
      break;
    case 'overwrite':
      body = Buffer.from(envelope);
      body.set(m.bytes.subarray(0, Math.max(0, body.length - at(m.at))), at(m.at));
      break;
    case 'splice':
      body = Buffer.concat([envelope.subarray(0, at(m.at)), other.subarray(at(m.at))]);
      if (body.equals(other)) return undefined;
      break;
    case 'random':
      body = Buffer.from(m.bytes);
      break;
    case 'relocate': {
      const relocated = { body: envelope, method: m.method, path: `${path.slice(0, path.lastIndexOf('/') + 1)}${m.path}` };
      return relocated.method === method && relocated.path === path ? undefined : relocated;
    }
  }
  return body.equals(envelope) ? undefined : { body, method, path };
}

/**
 * Routes `sealed` (e2ee) and `both` (signed + e2ee, the response body limited to
 * MAX_RESPONSE_BYTES on `sealed`); the world's device enrolled with an X25519 key, and a client for
 * each AEAD.
 */
async function setUpE2ee(t: { after: (fn: () => void) => void }) {
  const dir = tempDir(t, 'gatehouse-fuzz-e2ee-');
  const keyFile = (keyId: number): string => {
    const file = join(dir, `gateway-${keyId}.key`);
    writeFileSync(file, `${x25519RawPrivateKey(fixtureGatewayKey(keyId).privateKey).toString('hex')}\n`);
    return file;
  };
  const world = await createWorld({ now: nowSeconds() });
  const e2e = await endToEnd(t, `
routes:
  - id: e2ee-keys
    match: { path: { exact: ${KEYS_PATH} }, methods: [GET] }
    filters:
      - e2eeKeys: { keys: &keys [{ keyId: 7, privateKeyFile: ${keyFile(7)} }, { keyId: 6, privateKeyFile: ${keyFile(6)} }] }
  - id: sealed
    match: { path: { prefix: /sealed/ } }
    filters:
      - e2ee: { keys: *keys, audience: ${AUDIENCE}, maxRequestBytes: ${MAX_REQUEST_BYTES}, maxResponseBytes: ${MAX_RESPONSE_BYTES} }
  - id: both
    match: { path: { prefix: /both/ } }
    filters:
      - e2ee: { keys: *keys, audience: ${AUDIENCE}, maxRequestBytes: ${MAX_REQUEST_BYTES} }
      - signed: ${await signedFilterConfig(world)}
`);
  const keyConfigs = (await e2e.envoy.request({ method: 'GET', path: KEYS_PATH, authority: AUTHORITY })).body;
  // the world's device, enrolled with an X25519 key: it seals, and it signs on `both`
  const { privateKey, publicKey } = generateDeviceKey();
  assert.deepEqual(await e2e.gatehouse.deps.stores.devices.put({ ...world.device, e2eePublicKey: new Uint8Array(publicKey) }), { ok: true });
  const clients: Record<'aes-128-gcm' | 'chacha20-poly1305', E2eeClient> = {
    'aes-128-gcm': made(createE2eeClient({ keyConfigs, deviceKeyId: world.device.deviceId, devicePrivateKey: privateKey, audience: AUDIENCE, aeads: ['aes-128-gcm'] })),
    'chacha20-poly1305': made(createE2eeClient({ keyConfigs, deviceKeyId: world.device.deviceId, devicePrivateKey: privateKey, audience: AUDIENCE, aeads: ['chacha20-poly1305'] })),
  };

  const sealRequest = (client: E2eeClient, method: string, path: string, plaintext: string, contentType: string | null): SealedRequest => {
    const sealed = client.encryptRequest({ method, path, body: Buffer.from(plaintext), contentType });
    assert.ok(sealed.ok, JSON.stringify(sealed));
    return sealed;
  };
  const seal = (client: E2eeClient, method: string, path: string, plaintext: string, contentType: string | null): Buffer => sealRequest(client, method, path, plaintext, contentType).body;

  return { e2e, world, clients, seal, sealRequest };
}

test('mutated, spliced, relocated and random e2ee envelopes are refused with a documented denial on an e2ee route and on a signed + e2ee route (fast-check)', async (t) => {
  const faults = watchProcessFaults(t);
  const { e2e, world, clients, seal } = await setUpE2ee(t);

  /** the request as the app sends it; on `both` signed over the body as sent */
  async function request(route: 'sealed' | 'both', method: string, path: string, body: Buffer, contentType: string | undefined, withLength: boolean): Promise<ClientRequest> {
    const headers: [string, string][] = [...(contentType === undefined ? [] : [['content-type', contentType] as [string, string]]), ...(withLength ? [['content-length', String(body.length)] as [string, string]] : [])];
    if (route === 'both') {
      const [pathOnly = path, query = ''] = path.split(/\?(.*)/s);
      const signature = await signRequest({ method, authority: AUTHORITY, path: pathOnly, query, body }, { credential: world.credential, signer: world.ephemeralSigner, now: nowSeconds() });
      headers.push(...Object.entries(signature));
    }
    return { method, path, authority: AUTHORITY, headers, body };
  }

  // valid envelopes pass on both routes, with either AEAD: what the fuzzer mutates is accepted as it is
  for (const route of ['sealed', 'both'] as const) {
    for (const client of Object.values(clients)) {
      const path = `/${route}/transfers`;
      const r = await e2e.envoy.request(await request(route, 'POST', path, seal(client, 'POST', path, BODY, 'application/json'), E2EE_REQUEST_MEDIA_TYPE, true));
      assert.equal(r.status, 200, `a valid envelope on ${route}: ${get(r.headers, 'x-gatehouse-reason') ?? ''}`);
      assert.equal(r.upstreamRequest?.body.toString(), BODY);
    }
  }

  const input = fc
    .record({
      route: fc.constantFrom('sealed' as const, 'both' as const),
      aead: fc.constantFrom('aes-128-gcm' as const, 'chacha20-poly1305' as const),
      plaintext: fc.oneof(fc.constant(BODY), fc.string({ maxLength: 100 })),
      innerType: fc.option(fc.constantFrom('application/json', 'text/plain; charset=utf-8'), { nil: null }),
      mutation,
      contentType: fc.oneof({ weight: 6, arbitrary: fc.constant(E2EE_REQUEST_MEDIA_TYPE) }, { weight: 1, arbitrary: fc.constantFrom(`${E2EE_REQUEST_MEDIA_TYPE}; v=1`, E2EE_REQUEST_MEDIA_TYPE.toUpperCase(), 'application/json', 'application/ohttp-req', '') }, { weight: 1, arbitrary: fc.constant(undefined) }),
      withLength: fc.boolean(),
    });

  const reasons = new Tally();
  const kinds = new Tally();
  let sent = 0;
  let unchanged = 0;
  await fc.assert(
    fc.asyncProperty(input, async (i) => {
      const path = `/${i.route}/transfers`;
      const client = clients[i.aead];
      const envelope = seal(client, 'POST', path, i.plaintext, i.innerType);
      const changed = mutate(envelope, seal(client, 'POST', path, i.plaintext, i.innerType), i.mutation, 'POST', path);
      if (changed === undefined) {
        unchanged++;
        return;
      }
      sent++;
      kinds.add(i.mutation.kind);
      const r = await e2e.envoy.request(await request(i.route, changed.method, changed.path, changed.body, i.contentType, i.withLength));
      assert.equal(r.upstreamRequest, undefined, `${i.mutation.kind} on ${i.route} reached the upstream (${r.status})`);
      const denial = documentedDenial(r.status, get(r.headers, 'x-gatehouse-reason'));
      assert.ok(denial.ok, `${i.mutation.kind} on ${i.route}: ${denial.ok ? '' : denial.why}`);
      reasons.add(denial.reason);
    }),
    fuzzParameters(RUNS),
  );
  faults.assertNone();
  const after = await e2e.envoy.request(await request('both', 'POST', '/both/transfers', seal(clients['aes-128-gcm'], 'POST', '/both/transfers', BODY, 'application/json'), E2EE_REQUEST_MEDIA_TYPE, true));
  assert.equal(after.status, 200, 'a valid envelope still passes after the fuzzing');
  t.diagnostic(`fuzz e2ee: ${sent} mutated envelopes (${unchanged} mutations left it unchanged, not sent), 0 let through; mutations: ${kinds.toString()}; denials: ${reasons.toString()}`);
});

function made(result: ReturnType<typeof createE2eeClient>): E2eeClient {
  assert.ok(result.ok, JSON.stringify(result));
  return result.client;
}

/** A message of Envoy's after the request, with the upstream body it carries (to check what is released). */
interface UpstreamMessage {
  readonly what: string;
  readonly bytes: Buffer;
  readonly responseBody: Uint8Array | undefined;
}

/**
 * The upstream's side of an e2ee route, as raw ext_proc messages after a valid sealed request: any
 * response headers (status, content type, content-length, end_of_stream, forged x-gatehouse-*),
 * bodies (empty, plaintext, over maxResponseBytes, with or without end_of_stream), trailers,
 * request messages that may still come, in any order. The property: a response body is never
 * released in plaintext — every response_body answer that continues a non-empty body replaces it
 * with one the app opens to exactly the upstream's bytes — and every other answer is a documented
 * denial; every stream ends.
 */
test('raw response phases on an e2ee route: a response body is never released in plaintext, whatever Envoy sends in whatever order (fast-check)', async (t) => {
  const faults = watchProcessFaults(t);
  const { e2e, clients, sealRequest } = await setUpE2ee(t);
  const client = new grpc.Client(`127.0.0.1:${e2e.gatehouse.grpcPort}`, grpc.credentials.createInsecure());
  t.after(() => { client.close(); });
  const path = '/sealed/transfers';
  const encode = (init: MessageInitShape<typeof ProcessingRequestSchema>): Buffer => Buffer.from(toBinary(ProcessingRequestSchema, create(ProcessingRequestSchema, init)));
  const headers = (pairs: [string, string][]) => ({ headers: pairs.map(([key, value]) => create(HeaderValueSchema, { key, rawValue: new TextEncoder().encode(value) })) });

  const upstreamBody = fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.uint8Array({ minLength: MAX_RESPONSE_BYTES - 4, maxLength: MAX_RESPONSE_BYTES + 4 }));
  const responseHeaders: fc.Arbitrary<UpstreamMessage> = fc
    .record({
      status: fc.constantFrom('200', '201', '204', '500', 'abc'),
      contentType: fc.option(fc.constantFrom('application/json', 'text/plain; charset=utf-8', 'x'.repeat(300), 'bad\u0001type', E2EE_REQUEST_MEDIA_TYPE), { nil: undefined }),
      contentLength: fc.option(fc.oneof(fc.nat({ max: MAX_RESPONSE_BYTES + 8 }).map(String), fc.constantFrom('-1', '1, 1')), { nil: undefined }),
      forged: fc.boolean(),
      endOfStream: fc.boolean(),
    })
    .map((h) => ({
      what: `response_headers(${h.status}${h.contentLength === undefined ? '' : `, length ${h.contentLength}`}, eos ${h.endOfStream})`,
      bytes: encode({
        request: {
          case: 'responseHeaders',
          value: {
            headers: headers([[':status', h.status], ...(h.contentType === undefined ? [] : [['content-type', h.contentType] as [string, string]]), ...(h.contentLength === undefined ? [] : [['content-length', h.contentLength] as [string, string]]), ...(h.forged ? [['x-gatehouse-reason', 'none'] as [string, string]] : [])]),
            endOfStream: h.endOfStream,
          },
        },
      }),
      responseBody: undefined as Uint8Array | undefined,
    }));
  const body = (which: 'requestBody' | 'responseBody'): fc.Arbitrary<UpstreamMessage> =>
    fc.record({ body: upstreamBody, endOfStream: fc.boolean() }).map((b) => ({
      what: `${which}(${b.body.length} bytes, eos ${b.endOfStream})`,
      bytes: encode({ request: { case: which, value: b } }),
      responseBody: which === 'responseBody' ? b.body : undefined,
    }));
  const trailers = (which: 'requestTrailers' | 'responseTrailers'): fc.Arbitrary<UpstreamMessage> => fc.constant({ what: which, bytes: encode({ request: { case: which, value: { trailers: headers([['x-t', '1']]) } } }), responseBody: undefined as Uint8Array | undefined });
  const anyMessage = fc.oneof(responseHeaders, body('responseBody'), trailers('responseTrailers'), body('requestBody'), trailers('requestTrailers'));
  // an upstream answer as Envoy sends it in BUFFERED mode: headers, then the whole body
  const plausible: fc.Arbitrary<UpstreamMessage[]> = fc.tuple(fc.constantFrom('200', '201'), upstreamBody.filter((b) => b.length > 0), fc.boolean()).map(([status, bytes, withLength]) => [
    { what: `response_headers(${status})`, bytes: encode({ request: { case: 'responseHeaders', value: { headers: headers([[':status', status], ['content-type', 'application/json'], ...(withLength ? [['content-length', String(bytes.length)] as [string, string]] : [])]), endOfStream: false } } }), responseBody: undefined as Uint8Array | undefined },
    { what: `responseBody(${bytes.length} bytes, eos true)`, bytes: encode({ request: { case: 'responseBody', value: { body: bytes, endOfStream: true } } }), responseBody: bytes as Uint8Array | undefined },
  ]);
  // Envoy's order, Envoy's order with any values (headers, body, trailers), or any sequence
  const afterRequest: fc.Arbitrary<UpstreamMessage[]> = fc.oneof(
    { weight: 2, arbitrary: plausible },
    { weight: 3, arbitrary: fc.tuple(responseHeaders, fc.option(body('responseBody'), { freq: 5, nil: undefined }), fc.option(trailers('responseTrailers'), { freq: 4, nil: undefined })).map((m) => m.filter((x): x is UpstreamMessage => x !== undefined)) },
    { weight: 2, arbitrary: fc.array(anyMessage, { minLength: 1, maxLength: 5 }) },
  );
  const input = fc.record({ aead: fc.constantFrom('aes-128-gcm' as const, 'chacha20-poly1305' as const), messages: afterRequest });

  const outcomes = new Tally();
  let streams = 0;
  let sealedBodies = 0;
  await fc.assert(
    fc.asyncProperty(input, async ({ aead, messages }) => {
      streams++;
      const sealed = sealRequest(clients[aead], 'POST', path, BODY, 'application/json');
      const request = [
        encode({ request: { case: 'requestHeaders', value: { headers: headers([[':method', 'POST'], [':path', path], [':authority', AUTHORITY], [':scheme', 'https'], ['content-type', E2EE_REQUEST_MEDIA_TYPE], ['content-length', String(sealed.body.length)]]), endOfStream: false } } }),
        encode({ request: { case: 'requestBody', value: { body: sealed.body, endOfStream: true } } }),
      ];
      const { answers, end } = await runExtProcStream(client, [...request, ...messages.map((m) => m.bytes)]);
      assert.notEqual(end, 'no end', `the stream did not end within ${STREAM_BOUND_MS} ms of its half-close`);
      assert.equal(answers[0]?.response.case, 'requestHeaders', 'the sealed request passes its headers');
      assert.equal(answers[1]?.response.case, 'requestBody', 'and its body is opened');
      // one answer per message until a denial (nothing is answered after it) or the stream's error
      answers.slice(2).forEach((answer, i) => {
        const message = messages[i]!;
        if (answer.response.case === 'immediateResponse') {
          const immediate = answer.response.value;
          const reason = immediate.headers?.setHeaders.find((h) => h.header?.key === 'x-gatehouse-reason')?.header;
          const denial = documentedDenial(immediate.status?.code ?? 0, reason === undefined ? undefined : Buffer.from(reason.rawValue).toString());
          assert.ok(denial.ok, `${message.what}: ${denial.ok ? '' : denial.why}`);
          outcomes.add(denial.reason);
          return;
        }
        outcomes.add(`${answer.response.case ?? 'none'} continued`);
        if (message.responseBody === undefined || message.responseBody.length === 0) return;
        assert.equal(answer.response.case, 'responseBody', `${message.what} answered as ${answer.response.case ?? 'nothing'}`);
        const mutation = answer.response.case === 'responseBody' ? answer.response.value.response?.bodyMutation?.mutation : undefined;
        assert.equal(mutation?.case, 'body', `${message.what}: continued without replacing the body (plaintext released)`);
        const opened = sealed.decryptResponse({ contentType: E2EE_RESPONSE_MEDIA_TYPE, body: mutation!.value as Uint8Array });
        assert.ok(opened.ok, `${message.what}: the replaced body does not open: ${JSON.stringify(opened)}`);
        assert.ok(Buffer.from(opened.plaintext).equals(Buffer.from(message.responseBody)), `${message.what}: opens to other bytes than the upstream sent`);
        sealedBodies++;
      });
    }),
    fuzzParameters(RESPONSE_RUNS),
  );
  faults.assertNone();
  t.diagnostic(`fuzz e2ee responses: ${streams} streams, ${sealedBodies} response bodies sealed and opened by the app, 0 released in plaintext; answers: ${outcomes.toString()}`);
});
