// Self-tests of ExtProcStandIn: trailers, response streaming, local replies of other filters,
// downstream reset, observability mode, forward rules, content-length handling.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ProcessingMode_BodySendMode as BodyMode, ProcessingMode_HeaderSendMode as HeaderMode } from '../../src/gen/envoy/extensions/filters/http/ext_proc/v3/processing_mode_pb.js';
import { CommonResponse_ResponseStatus as ResponseStatus } from '../../src/gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import { StatusCode } from '../../src/gen/envoy/type/v3/http_status_pb.js';
import { answerEach, continueFor, type StreamScript } from './fake-processor.js';
import { bodyOf, extProcConfig, get, headersOf, kinds, mutation, mode, protoPairs, setRaw, withStandIn } from './helpers.js';
import { startUpstream, type Upstream } from './upstream.js';
import { createTestCa } from '../support/certificates.js';

let upstream: Upstream;
before(async () => { upstream = await startUpstream(); });
after(async () => { await upstream.close(); });

const run = (script: StreamScript, opts: Parameters<typeof withStandIn>[2], fn: Parameters<typeof withStandIn>[3]): Promise<void> => withStandIn(upstream, script, opts, fn);

describe('trailers (1.14, 1.15, 5.18)', () => {
  test('request trailers SEND: trailer mutation applied and forwarded upstream', async () => {
    await run(answerEach((m) => m.request.case === 'requestTrailers' ? continueFor(m, { headerMutation: mutation([setRaw('x-t', 'changed'), setRaw('x-added', '1')]) }) : continueFor(m)),
      { filter: extProcConfig({ processingMode: mode({ requestTrailerMode: HeaderMode.SEND, responseHeaderMode: HeaderMode.SKIP }) }), enableTrailers: true }, async (s) => {
        const r = await s.request({ method: 'POST', path: '/', authority: 'h', body: 'b', trailers: [['x-t', 'orig']] });
        assert.deepEqual(kinds(r.sent), ['requestHeaders', 'requestTrailers']);
        const t = r.sent[1]?.request;
        assert.equal(t?.case, 'requestTrailers');
        assert.equal(get(r.upstreamRequest?.trailers ?? [], 'x-t'), 'changed');
        assert.equal(get(r.upstreamRequest?.trailers ?? [], 'x-added'), '1');
      });
  });

  test('STREAMED with trailers: trailers sent only after every queued chunk is answered (1.15)', async () => {
    const order: string[] = [];
    await run(async (ctx) => {
      for (let i = 0; i < 10; i++) {
        const m = await ctx.next();
        if (m === undefined) return;
        order.push(m.request.case ?? '');
        if (m.request.case === 'requestBody') await new Promise((r) => setTimeout(r, 20));
        ctx.send(continueFor(m));
      }
    }, { filter: extProcConfig({ processingMode: mode({ requestBodyMode: BodyMode.STREAMED, requestTrailerMode: HeaderMode.SEND, responseHeaderMode: HeaderMode.SKIP }) }), enableTrailers: true }, async (s) => {
      const r = await s.request({ method: 'POST', path: '/', authority: 'h', body: [Buffer.from('a'), Buffer.from('b')], trailers: [['x-t', '1']] }, { pace: 'lockstep' });
      assert.equal(r.status, 200);
      assert.equal(order[order.length - 1], 'requestTrailers');
      assert.equal(r.sent.filter((m) => m.request.case === 'requestBody').every((m) => !bodyOf(m).eos), true);
      assert.equal(r.upstreamRequest?.body.toString(), 'ab');
    });
  });
});

describe('response path', () => {
  test('STREAMED response body: chunks go to the processor, the last with end_of_stream; mutation applied', async () => {
    await run(answerEach((m) => m.request.case === 'responseBody'
      ? continueFor(m, { bodyMutation: { mutation: { case: 'body', value: Buffer.from(Buffer.from(m.request.value.body).toString().toUpperCase()) } } })
      : continueFor(m)), { filter: extProcConfig({ processingMode: mode({ responseBodyMode: BodyMode.STREAMED }) }) }, async (s) => {
      upstream.enqueue({ status: 200, body: [Buffer.from('ab'), Buffer.from('cd'), Buffer.from('ef')], chunkDelayMs: 30 });
      const r = await s.request({ method: 'GET', path: '/', authority: 'h' });
      const bodies = r.sent.filter((m) => m.request.case === 'responseBody').map(bodyOf);
      assert.equal(bodies.map((b) => b.body).join(''), 'abcdef');
      assert.equal(bodies[bodies.length - 1]?.eos, true);
      assert.ok(bodies.slice(0, -1).every((b) => !b.eos));
      assert.equal(r.body.toString(), 'ABCDEF');
      assert.equal(get(r.headers, 'content-length'), undefined); // 6.3
    });
  });

  test('a 413 from the filter manager is sent to the processor as response_headers (1.19, 1.8)', async () => {
    await run(answerEach(), { filter: extProcConfig({ processingMode: mode({ requestBodyMode: BodyMode.BUFFERED }) }), bufferLimitBytes: 2 }, async (s) => {
      const r = await s.request({ method: 'POST', path: '/', authority: 'h', body: [Buffer.from('abc'), Buffer.from('d')] }, { pace: 'lockstep' });
      assert.equal(r.status, 413);
      assert.deepEqual(kinds(r.sent), ['requestHeaders', 'responseHeaders']);
      assert.equal(get(protoPairs(headersOf(r.sent[1])), ':status'), '413');
    });
  });

  test('immediate_response after response headers went downstream resets the stream (7.7)', async () => {
    await run(answerEach((m) => m.request.case === 'responseBody' ? { response: { case: 'immediateResponse', value: { status: { code: StatusCode.Forbidden } } } } : continueFor(m)),
      { filter: extProcConfig({ processingMode: mode({ responseBodyMode: BodyMode.STREAMED }) }) }, async (s) => {
        upstream.enqueue({ status: 200, body: [Buffer.from('ab'), Buffer.from('cd')], chunkDelayMs: 30 });
        const r = await s.request({ method: 'GET', path: '/', authority: 'h' });
        assert.equal(r.downstreamReset, true);
        assert.equal(r.status, 200);
      });
  });

  test('BUFFERED response over the limit → 500 response_payload_too_large (1.8)', async () => {
    await run(answerEach(), { filter: extProcConfig({ processingMode: mode({ responseBodyMode: BodyMode.BUFFERED }) }), bufferLimitBytes: 3 }, async (s) => {
      upstream.enqueue({ status: 200, body: [Buffer.from('abcd'), Buffer.from('efgh')], chunkDelayMs: 30 });
      const r = await s.request({ method: 'GET', path: '/', authority: 'h' });
      assert.equal(r.status, 500);
      assert.equal(r.details, 'response_payload_too_large');
    });
  });
});

describe('observability mode (8.7), forward rules (1.3), content-length (6.3, 5.15), 6.9', () => {
  test('observability: every message marked, STREAMED body sent, answers ignored, no pause', async () => {
    await run(async (ctx) => { for (;;) { const m = await ctx.next(); if (m === undefined) return; } },
      { filter: extProcConfig({ observabilityMode: true, processingMode: mode({ requestBodyMode: BodyMode.STREAMED }) }) }, async (s, p) => {
        const r = await s.request({ method: 'POST', path: '/', authority: 'h', body: 'data' });
        assert.equal(r.status, 200);
        assert.deepEqual(kinds(r.sent), ['requestHeaders', 'requestBody', 'responseHeaders']);
        assert.ok(r.sent.every((m) => m.observabilityMode));
        // The stream stays open (deferred close, 5 s) and the messages still reach the processor.
        for (let i = 0; i < 200 && (p.streams[0]?.received.length ?? 0) < 3; i++) await new Promise((res) => setTimeout(res, 5));
        assert.equal(p.streams.length, 1);
        assert.equal(p.streams[0]?.received.length, 3);
        assert.equal(p.streams[0]?.cancelled, false);
      });
  });

  test('forward_rules.allowed_headers limits what the processor sees', async () => {
    await run(answerEach(), { filter: extProcConfig({ forwardRules: { allowedHeaders: { patterns: [{ matchPattern: { case: 'prefix', value: 'x-keep' } }] } } }) }, async (s) => {
      const r = await s.request({ method: 'GET', path: '/', authority: 'h', headers: [['x-keep-1', 'a'], ['x-drop', 'b']] });
      assert.deepEqual(protoPairs(headersOf(r.sent[0])).map(([k]) => k), ['x-keep-1']);
    });
  });

  test('BUFFERED with header mode SKIP removes content-length; STREAMED ignores a server content-length (6.3, 5.15)', async () => {
    await run(answerEach(), { filter: extProcConfig({ processingMode: mode({ requestHeaderMode: HeaderMode.SKIP, requestBodyMode: BodyMode.BUFFERED, responseHeaderMode: HeaderMode.SKIP }) }) }, async (s) => {
      const r = await s.request({ method: 'POST', path: '/', authority: 'h', headers: [['content-length', '3']], body: 'abc' });
      assert.deepEqual(kinds(r.sent), ['requestBody']);
      assert.equal(get(r.upstreamRequest?.headers ?? [], 'content-length'), undefined);
    });
    await run(answerEach((m) => continueFor(m, { headerMutation: mutation([setRaw('content-length', '99'), setRaw('x-ok', '1')]) })),
      { filter: extProcConfig({ processingMode: mode({ requestBodyMode: BodyMode.STREAMED, responseHeaderMode: HeaderMode.SKIP }) }) }, async (s) => {
        const r = await s.request({ method: 'POST', path: '/', authority: 'h', headers: [['content-length', '3']], body: 'abc' }, { pace: 'lockstep' });
        assert.equal(get(r.upstreamRequest?.headers ?? [], 'content-length'), undefined);
        assert.equal(get(r.upstreamRequest?.headers ?? [], 'x-ok'), '1');
        assert.equal(r.counters.rejected_header_mutations, 0);
      });
  });

  test('CONTINUE_AND_REPLACE in a body answer acts as CONTINUE (6.9)', async () => {
    await run(answerEach((m) => m.request.case === 'requestBody' ? continueFor(m, { status: ResponseStatus.CONTINUE_AND_REPLACE }) : continueFor(m)),
      { filter: extProcConfig({ processingMode: mode({ requestBodyMode: BodyMode.BUFFERED, responseBodyMode: BodyMode.BUFFERED }) }) }, async (s) => {
        const r = await s.request({ method: 'POST', path: '/', authority: 'h', body: 'abc' });
        assert.deepEqual(kinds(r.sent), ['requestHeaders', 'requestBody', 'responseHeaders', 'responseBody']);
        assert.equal(r.upstreamRequest?.body.toString(), 'abc');
      });
  });

  test('attributes: only in the first message of each direction, under envoy.filters.http.ext_proc; missing values left out (8.6)', async () => {
    await run(answerEach(), {
      filter: extProcConfig({
        requestAttributes: ['request.path', 'connection.mtls', 'connection.uri_san_peer_certificate'],
        responseAttributes: ['response.code'],
        processingMode: mode({ requestBodyMode: BodyMode.BUFFERED }),
      }),
    }, async (s) => {
      const r = await s.request({ method: 'POST', path: '/p?x=1', authority: 'h', body: 'b' });
      assert.deepEqual(kinds(r.sent), ['requestHeaders', 'requestBody', 'responseHeaders']);
      assert.deepEqual(r.sent[0]?.attributes, { 'envoy.filters.http.ext_proc': { 'request.path': '/p?x=1', 'connection.mtls': false } });
      assert.deepEqual(r.sent[1]?.attributes, {});
      assert.deepEqual(r.sent[2]?.attributes, { 'envoy.filters.http.ext_proc': { 'response.code': 200 } });
    });
  });

  test('attributes of an mTLS downstream: the peer certificate\'s first URI SAN, subject (RFC 2253) and SHA-256 digest (8.6)', async () => {
    const ca = createTestCa();
    const cert = ca.issue({ subject: '/C=KR/O=Acme/CN=acme', uri: 'spiffe://partners.example.com/acme' });
    ca.close();
    const names = ['connection.mtls', 'connection.uri_san_peer_certificate', 'connection.dns_san_peer_certificate', 'connection.subject_peer_certificate', 'connection.sha256_peer_certificate_digest'];
    await run(answerEach(), { filter: extProcConfig({ requestAttributes: names }) }, async (s) => {
      const r = await s.request({ method: 'GET', path: '/', authority: 'h' }, { peerCertificate: cert.pem });
      assert.deepEqual(r.sent[0]?.attributes, {
        'envoy.filters.http.ext_proc': {
          'connection.mtls': true,
          'connection.uri_san_peer_certificate': 'spiffe://partners.example.com/acme',
          'connection.subject_peer_certificate': 'CN=acme,O=Acme,C=KR',
          'connection.sha256_peer_certificate_digest': new X509Certificate(cert.pem).fingerprint256.replaceAll(':', '').toLowerCase(),
        },
      }, 'no DNS SAN: left out');
    });
  });
});
