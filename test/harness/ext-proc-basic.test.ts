// Self-tests of ExtProcStandIn: messages per mode (catalogue 1), lifecycle (10), answers (3).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { ProcessingModeSchema, ProcessingMode_BodySendMode as BodyMode, ProcessingMode_HeaderSendMode as HeaderMode } from '../../src/gen/envoy/extensions/filters/http/ext_proc/v3/processing_mode_pb.js';
import { ExtProcStandIn } from './ext-proc.js';
import { answerEach, continueFor, startFakeProcessor, type FakeProcessor, type StreamScript } from './fake-processor.js';
import { bodyOf, extProcConfig, get, headersOf, kinds, mutation, protoPairs, setRaw } from './helpers.js';
import { startUpstream, type Upstream } from './upstream.js';

let upstream: Upstream;
before(async () => { upstream = await startUpstream(); });
after(async () => { await upstream.close(); });

async function withProcessor<T>(script: StreamScript, fn: (p: FakeProcessor) => Promise<T>): Promise<T> {
  const p = await startFakeProcessor(script);
  try {
    return await fn(p);
  } finally {
    await p.close();
  }
}

describe('messages per processing mode (1)', () => {
  test('GET with default mode: request_headers end_of_stream true, raw_value only, pseudo-headers, x-request-id; then response_headers', async () => {
    await withProcessor(answerEach(), async (p) => {
      const s = new ExtProcStandIn({ processorAddress: p.address, filter: extProcConfig(), upstream });
      const r = await s.request({ method: 'GET', path: '/a?b=1', authority: 'example.com', headers: [['X-Foo', 'bar']] });
      s.close();
      assert.equal(r.status, 200);
      assert.deepEqual(kinds(r.sent), ['requestHeaders', 'responseHeaders']);
      const rh = headersOf(r.sent[0]);
      assert.equal(rh.endOfStream, true);
      const pairs = protoPairs(rh);
      for (const hv of rh.headers?.headers ?? []) {
        assert.equal(hv.value, '', `value must be empty for ${hv.key}`);
        assert.equal(hv.key, hv.key.toLowerCase());
      }
      assert.equal(get(pairs, ':method'), 'GET');
      assert.equal(get(pairs, ':path'), '/a?b=1');
      assert.equal(get(pairs, ':authority'), 'example.com');
      assert.equal(get(pairs, ':scheme'), 'http');
      assert.equal(get(pairs, 'x-foo'), 'bar');
      assert.match(get(pairs, 'x-request-id') ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      const resp = headersOf(r.sent[1]);
      assert.equal(get(protoPairs(resp), ':status'), '200');
      assert.equal(resp.endOfStream, false);
      assert.equal(r.upstreamRequest?.method, 'GET');
      assert.equal(r.upstreamRequest.path, '/a?b=1');
      assert.equal(get(r.upstreamRequest.headers, 'host'), 'example.com');
      // 1.4, 1.21, 1.22
      assert.equal(Object.keys(rh.attributes).length, 0);
      assert.ok(r.sent[0]?.metadataContext !== undefined);
      assert.equal(r.sent[0].observabilityMode, false);
      // 10.1: one stream
      assert.equal(p.streams.length, 1);
      assert.equal(r.streamClosedBy, 'envoy');
    });
  });

  test('request_header_mode SKIP and response SKIP: no stream is opened (1.5, 10.1)', async () => {
    await withProcessor(answerEach(), async (p) => {
      const filter = extProcConfig({ processingMode: create(ProcessingModeSchema, { requestHeaderMode: HeaderMode.SKIP, responseHeaderMode: HeaderMode.SKIP }) });
      const s = new ExtProcStandIn({ processorAddress: p.address, filter, upstream });
      const r = await s.request({ method: 'GET', path: '/', authority: 'h' });
      s.close();
      assert.equal(r.status, 200);
      assert.equal(r.sent.length, 0);
      assert.equal(p.streams.length, 0);
      assert.equal(r.streamClosedBy, 'none');
    });
  });

  test('BUFFERED: one body message with the whole body, headers held until the body answer (1.7)', async () => {
    await withProcessor(answerEach(), async (p) => {
      const filter = extProcConfig({ processingMode: create(ProcessingModeSchema, { requestBodyMode: BodyMode.BUFFERED, responseHeaderMode: HeaderMode.SKIP }) });
      const s = new ExtProcStandIn({ processorAddress: p.address, filter, upstream });
      const r = await s.request({ method: 'POST', path: '/', authority: 'h', body: [Buffer.from('abc'), Buffer.from('def')] }, { pace: 'lockstep' });
      s.close();
      assert.deepEqual(kinds(r.sent), ['requestHeaders', 'requestBody']);
      assert.equal(headersOf(r.sent[0]).endOfStream, false);
      assert.deepEqual(bodyOf(r.sent[1]), { body: 'abcdef', eos: true });
      assert.equal(r.upstreamRequest?.body.toString(), 'abcdef');
    });
  });

  test('BUFFERED with trailers: body sent with end_of_stream false; trailers not sent in SKIP (1.7, 1.14, 1.16)', async () => {
    await withProcessor(answerEach(), async (p) => {
      const filter = extProcConfig({ processingMode: create(ProcessingModeSchema, { requestBodyMode: BodyMode.BUFFERED, responseHeaderMode: HeaderMode.SKIP }) });
      const s = new ExtProcStandIn({ processorAddress: p.address, filter, upstream, enableTrailers: true });
      const r = await s.request({ method: 'POST', path: '/', authority: 'h', body: 'xy', trailers: [['x-t', '1']] }, { pace: 'lockstep' });
      s.close();
      assert.deepEqual(kinds(r.sent), ['requestHeaders', 'requestBody']);
      assert.deepEqual(bodyOf(r.sent[1]), { body: 'xy', eos: false });
      assert.equal(get(r.upstreamRequest?.trailers ?? [], 'x-t'), '1');
    });
  });

  test('trailer mode SEND sends request_trailers only when trailers exist (1.14)', async () => {
    await withProcessor(answerEach(), async (p) => {
      const filter = extProcConfig({ processingMode: create(ProcessingModeSchema, { requestTrailerMode: HeaderMode.SEND, responseHeaderMode: HeaderMode.SKIP }) });
      const s = new ExtProcStandIn({ processorAddress: p.address, filter, upstream, enableTrailers: true });
      const a = await s.request({ method: 'POST', path: '/', authority: 'h', body: 'xy' });
      const b = await s.request({ method: 'POST', path: '/', authority: 'h', body: 'xy', trailers: [['x-t', '1']] });
      s.close();
      assert.deepEqual(kinds(a.sent), ['requestHeaders']);
      assert.deepEqual(kinds(b.sent), ['requestHeaders', 'requestTrailers']);
    });
  });

  test('STREAMED: one message per chunk, in order, each answered (1.9)', async () => {
    await withProcessor(answerEach(), async (p) => {
      const filter = extProcConfig({ processingMode: create(ProcessingModeSchema, { requestBodyMode: BodyMode.STREAMED, responseHeaderMode: HeaderMode.SKIP }) });
      const s = new ExtProcStandIn({ processorAddress: p.address, filter, upstream });
      const r = await s.request({ method: 'POST', path: '/', authority: 'h', headers: [['content-length', '6']], body: [Buffer.from('ab'), Buffer.from('cd'), Buffer.from('ef')] }, { pace: 'lockstep' });
      s.close();
      assert.deepEqual(kinds(r.sent), ['requestHeaders', 'requestBody', 'requestBody', 'requestBody']);
      assert.deepEqual(r.sent.slice(1).map(bodyOf), [{ body: 'ab', eos: false }, { body: 'cd', eos: false }, { body: 'ef', eos: true }]);
      // 6.3: content-length removed from the forwarded headers (but sent to the processor).
      assert.equal(get(protoPairs(headersOf(r.sent[0])), 'content-length'), '6');
      assert.equal(get(r.upstreamRequest?.headers ?? [], 'content-length'), undefined);
      assert.equal(r.upstreamRequest?.body.toString(), 'abcdef');
    });
  });

  test('STREAMED with the whole body arriving before the headers answer: sent as one message (1.10)', async () => {
    await withProcessor(async (ctx) => {
      const h = await ctx.next();
      await new Promise((res) => setTimeout(res, 50)); // let every chunk arrive first
      ctx.send(continueFor(h!));
      for (let i = 0; i < 5; i++) {
        const m = await ctx.next();
        if (m === undefined) return;
        ctx.send(continueFor(m));
      }
    }, async (p) => {
      const filter = extProcConfig({ processingMode: create(ProcessingModeSchema, { requestBodyMode: BodyMode.STREAMED, responseHeaderMode: HeaderMode.SKIP }) });
      const s = new ExtProcStandIn({ processorAddress: p.address, filter, upstream });
      const r = await s.request({ method: 'POST', path: '/', authority: 'h', body: [Buffer.from('ab'), Buffer.from('cd')] });
      s.close();
      assert.deepEqual(kinds(r.sent), ['requestHeaders', 'requestBody']);
      assert.deepEqual(bodyOf(r.sent[1]), { body: 'abcd', eos: true });
      assert.equal(r.upstreamRequest?.body.toString(), 'abcd');
    });
  });

  test('STREAMED chunk mutation replaces only that chunk (6.4)', async () => {
    await withProcessor(answerEach((m) => {
      if (m.request.case === 'requestBody' && Buffer.from(m.request.value.body).toString() === 'cd') {
        return continueFor(m, { bodyMutation: { mutation: { case: 'body', value: Buffer.from('XYZ') } } });
      }
      return continueFor(m);
    }), async (p) => {
      const filter = extProcConfig({ processingMode: create(ProcessingModeSchema, { requestBodyMode: BodyMode.STREAMED, responseHeaderMode: HeaderMode.SKIP }) });
      const s = new ExtProcStandIn({ processorAddress: p.address, filter, upstream });
      const r = await s.request({ method: 'POST', path: '/', authority: 'h', body: [Buffer.from('ab'), Buffer.from('cd'), Buffer.from('ef')] }, { pace: 'lockstep' });
      s.close();
      assert.equal(r.upstreamRequest?.body.toString(), 'abXYZef');
    });
  });

  test('BUFFERED over the buffer limit: 413 request_payload_too_large and no body message (1.8)', async () => {
    await withProcessor(answerEach(), async (p) => {
      const filter = extProcConfig({ processingMode: create(ProcessingModeSchema, { requestBodyMode: BodyMode.BUFFERED, responseHeaderMode: HeaderMode.SKIP }) });
      const s = new ExtProcStandIn({ processorAddress: p.address, filter, upstream, bufferLimitBytes: 4 });
      const r = await s.request({ method: 'POST', path: '/', authority: 'h', body: [Buffer.from('abc'), Buffer.from('def'), Buffer.from('g')] }, { pace: 'lockstep' });
      s.close();
      assert.equal(r.status, 413);
      assert.equal(r.details, 'request_payload_too_large');
      assert.equal(r.body.toString(), 'Payload Too Large');
      assert.deepEqual(kinds(r.sent), ['requestHeaders']);
      assert.equal(r.upstreamRequest, undefined);
    });
  });

  test('BUFFERED: a body over the limit that arrives while the headers answer is pending also gets 413 (1.8)', async () => {
    await withProcessor(async (ctx) => {
      const h = await ctx.next();
      await new Promise((res) => setTimeout(res, 50));
      ctx.send(continueFor(h!));
      await ctx.next();
    }, async (p) => {
      const filter = extProcConfig({ processingMode: create(ProcessingModeSchema, { requestBodyMode: BodyMode.BUFFERED, responseHeaderMode: HeaderMode.SKIP }) });
      const s = new ExtProcStandIn({ processorAddress: p.address, filter, upstream, bufferLimitBytes: 4 });
      const r = await s.request({ method: 'POST', path: '/', authority: 'h', body: [Buffer.from('abc'), Buffer.from('def')] });
      s.close();
      assert.equal(r.status, 413);
      assert.equal(r.details, 'request_payload_too_large');
    });
  });

  test('BUFFERED_PARTIAL: one message when the queue exceeds the limit, end_of_stream false; rest passes (1.11)', async () => {
    await withProcessor(answerEach(), async (p) => {
      const filter = extProcConfig({ processingMode: create(ProcessingModeSchema, { requestBodyMode: BodyMode.BUFFERED_PARTIAL, responseHeaderMode: HeaderMode.SKIP }) });
      const s = new ExtProcStandIn({ processorAddress: p.address, filter, upstream, bufferLimitBytes: 4 });
      const r = await s.request({ method: 'POST', path: '/', authority: 'h', body: [Buffer.from('abc'), Buffer.from('def'), Buffer.from('g')] }, { pace: 'lockstep' });
      s.close();
      assert.equal(r.status, 200);
      assert.deepEqual(kinds(r.sent), ['requestHeaders', 'requestBody']);
      assert.deepEqual(bodyOf(r.sent[1]), { body: 'abcdef', eos: false });
      assert.equal(r.upstreamRequest?.body.toString(), 'abcdefg');
    });
  });

  test('response phase on the same stream; response BUFFERED body mutation (1.17, 6.1)', async () => {
    await withProcessor(answerEach((m) => {
      if (m.request.case === 'responseBody') {
        return continueFor(m, { headerMutation: mutation([setRaw('content-length', '3')]), bodyMutation: { mutation: { case: 'body', value: Buffer.from('new') } } });
      }
      return continueFor(m);
    }), async (p) => {
      const filter = extProcConfig({ processingMode: create(ProcessingModeSchema, { responseBodyMode: BodyMode.BUFFERED }) });
      const s = new ExtProcStandIn({ processorAddress: p.address, filter, upstream });
      const r = await s.request({ method: 'GET', path: '/x', authority: 'h' });
      s.close();
      assert.equal(p.streams.length, 1);
      assert.deepEqual(kinds(r.sent), ['requestHeaders', 'responseHeaders', 'responseBody']);
      assert.equal(bodyOf(r.sent[2]).eos, true);
      assert.match(bodyOf(r.sent[2]).body, /"path":"\/x"/);
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'new');
      assert.equal(get(r.headers, 'content-length'), '3');
    });
  });
});

describe('header mutations (5)', () => {
  test('raw_value is applied; value-only sets the header to empty; append true adds; x-envoy/host/:authority ignored by default', async () => {
    await withProcessor(answerEach((m, i) => i === 0
      ? continueFor(m, {
        headerMutation: mutation([
          setRaw('x-new', 'v1'),
          { ...setRaw('x-value-only', ''), header: { ...setRaw('x-value-only', '').header!, value: 'ignored' } },
          setRaw('x-foo', 'second', true),
          setRaw('user-agent', 'ua2', true),
          setRaw('x-envoy-thing', 'no'),
          setRaw('host', 'evil'),
          setRaw(':authority', 'evil'),
          setRaw(':path', '/rewritten'),
        ]),
      })
      : continueFor(m)), async (p) => {
      const s = new ExtProcStandIn({ processorAddress: p.address, filter: extProcConfig(), upstream });
      const r = await s.request({ method: 'GET', path: '/', authority: 'h', headers: [['x-foo', 'first'], ['user-agent', 'ua1']] });
      s.close();
      const up = r.upstreamRequest!;
      assert.equal(get(up.headers, 'x-new'), 'v1');
      assert.equal(get(up.headers, 'x-value-only'), '');
      assert.deepEqual(up.headers.filter(([n]) => n === 'x-foo').map(([, v]) => v), ['first', 'second']);
      // 5.3: an inline header (user-agent) is comma-joined instead.
      assert.deepEqual(up.headers.filter(([n]) => n === 'user-agent').map(([, v]) => v), ['ua1,ua2']);
      assert.equal(get(up.headers, 'x-envoy-thing'), undefined);
      assert.equal(get(up.headers, 'host'), 'h');
      assert.equal(up.path, '/rewritten');
      assert.equal(r.counters.rejected_header_mutations, 3);
    });
  });

  test('invalid header character → 500 header_mutation_set_contains_invalid_character, even with failure_mode_allow (5.5)', async () => {
    await withProcessor(answerEach((m) => continueFor(m, { headerMutation: mutation([setRaw('x-bad', 'a\r\nb')]) })), async (p) => {
      const s = new ExtProcStandIn({ processorAddress: p.address, filter: extProcConfig({ failureModeAllow: true }), upstream });
      const r = await s.request({ method: 'GET', path: '/', authority: 'h' });
      s.close();
      assert.equal(r.status, 500);
      assert.equal(r.details, 'header_mutation_set_contains_invalid_character');
      assert.equal(r.upstreamRequest, undefined);
      assert.deepEqual(kinds(r.sent), ['requestHeaders']);
    });
  });
});
