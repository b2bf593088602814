// Attack class: a check that needs the body, and a body that never arrives whole (docs/security.md
// "Bodies"). Envoy is set up as a misconfigured or older gateway would be (mode_override ignored,
// bodies streamed, ext_authz without the body or with a partial one); whatever it sends, a signed
// route either checks the whole body or refuses, and a replay never reaches the upstream twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { CheckRequestSchema, CheckResponseSchema, type CheckResponse } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { ProcessingMode_BodySendMode, ProcessingMode_HeaderSendMode, ProcessingModeSchema, type ProcessingMode } from '../../src/gen/envoy/extensions/filters/http/ext_proc/v3/processing_mode_pb.js';
import { BufferSettingsSchema } from '../../src/gen/envoy/extensions/filters/http/ext_authz/v3/ext_authz_pb.js';
import { get } from '../harness/helpers.js';
import type { ExternalProcessor } from '../../src/gen/envoy/extensions/filters/http/ext_proc/v3/ext_proc_pb.js';
import { signedTransfer, signedWorld, TRANSFER } from '../support/signed-world.js';

/** the shipped processing mode with some fields changed, as a filter config would set them */
const withMode = (f: ExternalProcessor, change: Partial<Omit<ProcessingMode, '$typeName'>>): ProcessingMode => {
  const mode = create(ProcessingModeSchema, f.processingMode);
  Object.assign(mode, change);
  return mode;
};

const reason = (r: { headers: [string, string][] }): string | undefined => get(r.headers, 'x-gatehouse-reason');

test('ext_proc, mode_override ignored: the store checks ran at the headers, the missing body is refused before the response is released, and a replay never reaches the upstream', async (t) => {
  const { world, e2e } = await signedWorld(t, { envoy: { extProc: (f) => ({ ...f, allowModeOverride: false }) } });
  const request = await signedTransfer(world);
  const first = await e2e.envoy.request(request);
  assert.ok(!first.sent.some((m) => m.request.case === 'requestBody'), 'Envoy sent no body (it ignores mode_override)');
  assert.equal(reason(first), 'request_body_not_forwarded', 'the upstream answer is not released');
  assert.equal(first.status, 500);
  const replay = await e2e.envoy.request(request);
  assert.equal(reason(replay), 'signature_replayed', 'the nonce was claimed at the headers');
  assert.equal(replay.upstreamRequest, undefined, 'a replay never reaches the upstream');
  assert.equal(e2e.upstream.requests.length, 1, 'the upstream saw the request once, and its answer never reached the client');
});

test('ext_proc, request trailers instead of a body: refused, not taken as a request without one', async (t) => {
  const { world, e2e } = await signedWorld(t, {
    envoy: { extProc: (f) => ({ ...f, allowModeOverride: false, processingMode: withMode(f, { requestTrailerMode: ProcessingMode_HeaderSendMode.SEND }) }) },
  });
  const request = await signedTransfer(world);
  const result = await e2e.envoy.request({ ...request, trailers: [['x-checksum', 'abc']] });
  assert.equal(reason(result), 'request_body_not_forwarded');
  assert.equal(result.upstreamRequest, undefined);
});

test('ext_proc, bodies STREAMED by the filter config: a chunk without end_of_stream is not taken for the whole body', async (t) => {
  const { world, e2e } = await signedWorld(t, {
    envoy: { extProc: (f) => ({ ...f, allowModeOverride: false, processingMode: withMode(f, { requestBodyMode: ProcessingMode_BodySendMode.STREAMED }) }) },
  });
  const request = await signedTransfer(world);
  const half = Math.floor(TRANSFER.length / 2);
  const chunked = await e2e.envoy.request({ ...request, body: [Buffer.from(TRANSFER.slice(0, half)), Buffer.from(TRANSFER.slice(half))] }, { pace: 'lockstep' });
  assert.equal(reason(chunked), 'request_body_incomplete', 'a signature proves nothing about a body checked in part');
  assert.equal(chunked.status, 413);
  // STREAMED releases the headers upstream after their answer (1.9): the upstream may see them and
  // never more than the chunks answered before the refusal, and the request is reset
  assert.ok((chunked.upstreamRequest?.body.length ?? 0) < TRANSFER.length, 'the upstream never gets the whole unchecked body');

  const whole = await e2e.envoy.request(await signedTransfer(world));
  assert.equal(whole.status, 200, 'one chunk that is the whole declared body is checked and passes');
  assert.equal(whole.upstreamRequest?.body.toString(), TRANSFER);
});

test('ext_proc, bodies BUFFERED_PARTIAL by the filter config: the part Envoy buffered up to its limit is not taken for the whole body', async (t) => {
  // Envoy sends what it buffered once the queue passes the connection's buffer limit, with
  // end_of_stream false, and streams the rest to the upstream unseen (envoy-behaviours 1.11)
  const { world, e2e } = await signedWorld(t, {
    envoy: { extProc: (f) => ({ ...f, allowModeOverride: false, processingMode: withMode(f, { requestBodyMode: ProcessingMode_BodySendMode.BUFFERED_PARTIAL }) }), bufferLimitBytes: 16 },
  });
  const request = await signedTransfer(world);
  const chunks = [TRANSFER.slice(0, 12), TRANSFER.slice(12, 24), TRANSFER.slice(24)].map((part) => Buffer.from(part));
  const cut = await e2e.envoy.request({ ...request, body: chunks }, { pace: 'lockstep' });
  const bodies = cut.sent.filter((m) => m.request.case === 'requestBody');
  assert.equal(bodies.length, 1, 'Envoy sent one partial body message');
  assert.ok(bodies[0]?.request.case === 'requestBody' && !bodies[0].request.value.endOfStream && bodies[0].request.value.body.length < TRANSFER.length, 'cut at the buffer limit, end_of_stream false');
  assert.equal(reason(cut), 'request_body_incomplete', 'a signature proves nothing about a body checked in part');
  assert.equal(cut.status, 413);
  assert.equal(cut.upstreamRequest, undefined, 'BUFFERED_PARTIAL holds the headers until the answer: nothing reached the upstream');
  assert.equal(e2e.upstream.requests.length, 0);

  // the same mode with a body within the limit: one message with end_of_stream, checked and passed
  const roomy = await signedWorld(t, { envoy: { extProc: (f) => ({ ...f, allowModeOverride: false, processingMode: withMode(f, { requestBodyMode: ProcessingMode_BodySendMode.BUFFERED_PARTIAL }) }) } });
  const whole = await roomy.e2e.envoy.request({ ...(await signedTransfer(roomy.world)), body: chunks }, { pace: 'lockstep' });
  assert.equal(whole.status, 200, whole.details);
  assert.equal(whole.upstreamRequest?.body.toString(), TRANSFER);
});

test('ext_proc, response bodies STREAMED by the filter config on a route that does not need them: every chunk answered, nothing lost', async (t) => {
  const { e2e } = await signedWorld(t, {
    envoy: { extProc: (f) => ({ ...f, allowModeOverride: false, processingMode: withMode(f, { responseBodyMode: ProcessingMode_BodySendMode.STREAMED }) }) },
  });
  const result = await e2e.envoy.request({ method: 'GET', path: '/api/v1/accounts', authority: 'api.example.com' });
  assert.equal(result.status, 200, result.details);
  assert.ok(result.sent.some((m) => m.request.case === 'responseBody'), 'Envoy streamed the response body');
  assert.ok(result.received.filter((m) => m.response.case === 'responseBody').length >= 1, 'and gatehouse answered it');
});

test('ext_authz without with_request_body: a signed POST whose body Envoy did not forward is refused, never allowed unbound', async (t) => {
  const { world, e2e } = await signedWorld(t);
  const request = await signedTransfer(world, { body: 'x'.repeat(32) });
  const result = await e2e.authz.request(request);
  assert.equal(result.outcome, 'denied');
  assert.equal(reason(result), 'request_body_not_forwarded');
  assert.equal(result.upstreamRequest, undefined, 'the upstream never gets 32 unsigned bytes');
});

test('ext_authz with a partial body (allow_partial_message): refused 413, never a signature over a prefix', async (t) => {
  const { world, e2e } = await signedWorld(t, {
    envoy: { extAuthz: (f) => ({ ...f, withRequestBody: create(BufferSettingsSchema, { maxRequestBytes: 16, allowPartialMessage: true, packAsBytes: true }) }) },
  });
  const result = await e2e.authz.request(await signedTransfer(world));
  assert.equal(result.outcome, 'denied');
  assert.equal(reason(result), 'request_body_incomplete');
  assert.equal(result.status, 413);
  assert.equal(result.upstreamRequest, undefined);
});

test('ext_authz: a binary body as bytes is checked; a body sent as text (which Envoy makes UTF-8 by replacing bytes) is refused on a route that checks it', async (t) => {
  const { world, e2e } = await signedWorld(t, {
    envoy: { extAuthz: (f) => ({ ...f, withRequestBody: create(BufferSettingsSchema, { maxRequestBytes: 65536, allowPartialMessage: false, packAsBytes: true }) }) },
  });
  const binary = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x41]).toString('latin1');
  const packed = await e2e.authz.request(await signedTransfer(world, { body: binary }));
  assert.equal(packed.outcome, 'ok', `${packed.details} ${reason(packed) ?? ''}`);

  const { world: other, e2e: textBodies } = await signedWorld(t, {
    envoy: { extAuthz: (f) => ({ ...f, withRequestBody: create(BufferSettingsSchema, { maxRequestBytes: 65536, allowPartialMessage: false, packAsBytes: false }) }) },
  });
  const asText = await textBodies.authz.request(await signedTransfer(other));
  assert.equal(asText.outcome, 'denied');
  assert.equal(reason(asText), 'request_body_not_forwarded', 'the digest would be checked over other bytes than the upstream gets');
  assert.equal(asText.upstreamRequest, undefined);
});

test('ext_authz: a Check that cannot be decoded (a string field that is not UTF-8) is denied with a reason code, never failed with INTERNAL', async (t) => {
  const { e2e } = await signedWorld(t);
  const check = toBinary(CheckRequestSchema, create(CheckRequestSchema, { attributes: { request: { http: { method: 'POST', path: '/api/v1/transfers', host: 'api.example.com', headers: { 'x-probe': 'AAAA' } } } } }));
  const at = Buffer.from(check).indexOf('AAAA');
  const bytes = Buffer.from(check);
  bytes.set([0xff, 0xfe, 0xff, 0xfe], at);
  const client = new grpc.Client(`127.0.0.1:${e2e.gatehouse.grpcPort}`, grpc.credentials.createInsecure());
  t.after(() => { client.close(); });
  const answer = await new Promise<CheckResponse>((resolve, reject) => {
    client.makeUnaryRequest('/envoy.service.auth.v3.Authorization/Check', (b: Buffer) => b, (b: Buffer) => fromBinary(CheckResponseSchema, b), bytes, (error, value) => {
      if (error) reject(error);
      else resolve(value!);
    });
  });
  assert.notEqual(answer.status?.code, 0, 'not allowed');
  assert.equal(answer.httpResponse.case, 'deniedResponse');
  const denied = answer.httpResponse.case === 'deniedResponse' ? answer.httpResponse.value : undefined;
  assert.equal(denied?.status?.code, 400);
  assert.equal(denied?.headers.find((h) => h.header?.key === 'x-gatehouse-reason')?.header?.value, 'bad_request_headers');
});
