// Self-tests of ExtProcStandIn: answer classification (3), mode_override (2), timer (4),
// ImmediateResponse (7), body rules (6), metadata (8), per-route (9), lifecycle (10).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { durationFromMs } from '@bufbuild/protobuf/wkt';
import * as grpc from '@grpc/grpc-js';
import { GrpcServiceSchema } from '../../src/gen/envoy/config/core/v3/grpc_service_pb.js';
import { HeaderValueSchema } from '../../src/gen/envoy/config/core/v3/base_pb.js';
import { ExtProcPerRouteSchema } from '../../src/gen/envoy/extensions/filters/http/ext_proc/v3/ext_proc_pb.js';
import { ProcessingMode_BodySendMode as BodyMode, ProcessingMode_HeaderSendMode as HeaderMode } from '../../src/gen/envoy/extensions/filters/http/ext_proc/v3/processing_mode_pb.js';
import { CommonResponse_ResponseStatus as ResponseStatus, type ProcessingRequest } from '../../src/gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import { StatusCode } from '../../src/gen/envoy/type/v3/http_status_pb.js';
import { ExtProcStandIn } from './ext-proc.js';
import { answerEach, continueFor, startFakeProcessor, type ResponseInit, type StreamScript } from './fake-processor.js';
import { bodyOf, extProcConfig, get, headersOf, kinds, mutation, mode, setRaw, within, withStandIn } from './helpers.js';
import { startUpstream, type Upstream } from './upstream.js';

let upstream: Upstream;
before(async () => { upstream = await startUpstream(); });
after(async () => { await upstream.close(); });

const run = (script: StreamScript, opts: Parameters<typeof withStandIn>[2], fn: Parameters<typeof withStandIn>[3]): Promise<void> => withStandIn(upstream, script, opts, fn);

const GET = { method: 'GET', path: '/', authority: 'h' };
const immediate = (init: Extract<ResponseInit['response'], { case: 'immediateResponse' }>['value']): ResponseInit => ({ response: { case: 'immediateResponse', value: init } });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('wrong, empty and error answers (3)', () => {
  test('second answer to request_headers → 500 spurious_message; fail-open with failure_mode_allow (3.2, 3.4, 3.5)', async () => {
    const twice: StreamScript = async (ctx) => {
      const m = await ctx.next();
      ctx.send(continueFor(m!));
      ctx.send(continueFor(m!));
      await ctx.next();
    };
    // Response headers must be awaited so the second answer is spurious (not a late one after close).
    const filterMode = mode({ responseHeaderMode: HeaderMode.SEND });
    await run(twice, { filter: extProcConfig({ processingMode: filterMode }) }, async (s) => {
      const r = await s.request(GET);
      assert.equal(r.status, 500);
      assert.equal(r.details, 'spurious_message');
      assert.equal(r.counters.spurious_msgs_received, 1);
      assert.equal(r.body.length, 0);
      assert.equal(get(r.headers, 'content-type'), undefined);
    });
    await run(twice, { filter: extProcConfig({ processingMode: filterMode, failureModeAllow: true }) }, async (s) => {
      const r = await s.request(GET);
      assert.equal(r.status, 200);
      assert.equal(r.counters.failure_mode_allowed, 1);
      assert.deepEqual(kinds(r.sent), ['requestHeaders']); // 1.18: nothing after fail-open
    });
  });

  test('status_on_error (newer API field) sets the error status; values outside 400–599 fall back to 500', async () => {
    const bad: StreamScript = answerEach(() => ({}));
    await run(bad, { filter: extProcConfig(), newer: { statusOnError: 503 } }, async (s) => {
      assert.equal((await s.request(GET)).status, 503);
    });
    await run(bad, { filter: extProcConfig(), newer: { statusOnError: 200 } }, async (s) => {
      assert.equal((await s.request(GET)).status, 500);
    });
  });

  test('per-route failure_mode_allow overrides the filter (9.6)', async () => {
    const wrong: StreamScript = async (ctx) => {
      await ctx.next();
      ctx.send({ response: { case: 'responseHeaders', value: {} } });
      await ctx.next();
    };
    await run(wrong, { filter: extProcConfig({ failureModeAllow: false }), newer: { routeFailureModeAllow: true } }, async (s) => {
      const r = await s.request(GET);
      assert.equal(r.status, 200);
      assert.equal(r.counters.failure_mode_allowed, 1);
    });
  });

  test('empty ProcessingResponse (even with mode_override only) → 500 unhandled_message (3.3)', async () => {
    await run(answerEach(() => ({ modeOverride: {} })), { filter: extProcConfig() }, async (s) => {
      const r = await s.request(GET);
      assert.equal(r.status, 500);
      assert.equal(r.details, 'unhandled_message');
      assert.equal(r.streamClosedBy, 'envoy');
    });
  });

  test('disable_immediate_response: immediate_response is spurious (3.12)', async () => {
    await run(answerEach(() => immediate({ status: { code: StatusCode.Forbidden } })), { filter: extProcConfig({ disableImmediateResponse: true }) }, async (s) => {
      const r = await s.request(GET);
      assert.equal(r.status, 500);
      assert.equal(r.details, 'unhandled_immediate_response_due_to_config_disabled_it');
    });
  });

  test('server closes with OK after request headers → continues unmodified, no response messages (3.11, 1.18)', async () => {
    await run(async (ctx) => {
      await ctx.next();
      ctx.end();
    }, { filter: extProcConfig({ processingMode: mode({ requestBodyMode: BodyMode.BUFFERED }) }) }, async (s) => {
      const r = await s.request({ method: 'POST', path: '/', authority: 'h', body: 'payload' });
      assert.equal(r.status, 200);
      assert.equal(r.upstreamRequest?.body.toString(), 'payload');
      assert.deepEqual(kinds(r.sent), ['requestHeaders']);
      assert.equal(r.streamClosedBy, 'server');
      assert.equal(r.serverStatus?.code, 0);
    });
  });

  test('non-OK gRPC status → 500 ext_proc_error_gRPC_error_13{boom_x}; fail-open with failure_mode_allow (3.8, 3.9)', async () => {
    const fail: StreamScript = async (ctx) => {
      await ctx.next();
      ctx.end({ code: grpc.status.INTERNAL, details: 'boom x' });
    };
    await run(fail, { filter: extProcConfig() }, async (s) => {
      const r = await s.request(GET);
      assert.equal(r.status, 500);
      assert.equal(r.details, 'ext_proc_error_gRPC_error_13{boom_x}');
      assert.equal(r.counters.streams_failed, 1);
      assert.equal(r.upstreamRequest, undefined);
    });
    await run(fail, { filter: extProcConfig({ failureModeAllow: true }) }, async (s) => {
      const r = await s.request(GET);
      assert.equal(r.status, 200);
      assert.equal(r.counters.failure_mode_allowed, 1);
    });
  });

  test('non-OK status between request and response phase still fails the request (3.8)', async () => {
    await run(async (ctx) => {
      const m = await ctx.next();
      ctx.send(continueFor(m!));
      await sleep(10);
      ctx.end({ code: grpc.status.UNAVAILABLE, details: 'gone' });
    }, { filter: extProcConfig() }, async (s) => {
      upstream.enqueue({ status: 200, body: 'late', delayMs: 200 });
      const r = await s.request(GET);
      assert.equal(r.status, 500);
      assert.equal(r.details, 'ext_proc_error_gRPC_error_14{gone}');
    });
  });

  test('unreachable processor → 500 ext_proc_error_gRPC_error_14{…} (3.10)', async () => {
    const s = new ExtProcStandIn({ processorAddress: '127.0.0.1:1', upstream, filter: extProcConfig() });
    const r = await s.request(GET);
    s.close();
    assert.equal(r.status, 500);
    assert.match(r.details, /^ext_proc_error_gRPC_error_14\{.*\}$/);
  });
});

describe('mode_override (2)', () => {
  const overrideBody: StreamScript = answerEach((m) => m.request.case === 'requestHeaders'
    ? { ...continueFor(m), modeOverride: { requestBodyMode: BodyMode.BUFFERED } }
    : continueFor(m));

  test('ignored without allow_mode_override (2.1)', async () => {
    await run(overrideBody, { filter: extProcConfig() }, async (s) => {
      const r = await s.request({ method: 'POST', path: '/', authority: 'h', body: 'abc' });
      assert.deepEqual(kinds(r.sent), ['requestHeaders', 'responseHeaders']);
    });
  });

  test('honoured with allow_mode_override on a headers answer; body modes always replaced (2.3, 2.4)', async () => {
    await run(overrideBody, { filter: extProcConfig({ allowModeOverride: true }) }, async (s) => {
      const r = await s.request({ method: 'POST', path: '/', authority: 'h', body: 'abc' });
      assert.deepEqual(kinds(r.sent), ['requestHeaders', 'requestBody', 'responseHeaders']);
      assert.deepEqual(bodyOf(r.sent[1]), { body: 'abc', eos: true });
    });
    // Override {response_header_mode: SKIP} on a filter with a BUFFERED response body: body mode becomes NONE.
    await run(answerEach((m) => ({ ...continueFor(m), modeOverride: { responseHeaderMode: HeaderMode.SKIP } })),
      { filter: extProcConfig({ allowModeOverride: true, processingMode: mode({ responseBodyMode: BodyMode.BUFFERED }) }) }, async (s) => {
        const r = await s.request(GET);
        assert.deepEqual(kinds(r.sent), ['requestHeaders']);
        assert.equal(r.status, 200);
      });
  });

  test('ignored on a body answer (2.3)', async () => {
    await run(answerEach((m) => m.request.case === 'requestBody'
      ? { ...continueFor(m), modeOverride: { responseHeaderMode: HeaderMode.SKIP } }
      : continueFor(m)), { filter: extProcConfig({ allowModeOverride: true, processingMode: mode({ requestBodyMode: BodyMode.BUFFERED }) }) }, async (s) => {
      const r = await s.request({ method: 'POST', path: '/', authority: 'h', body: 'abc' }, { pace: 'lockstep' });
      assert.deepEqual(kinds(r.sent), ['requestHeaders', 'requestBody', 'responseHeaders']);
    });
  });

  test('allowed_override_modes: dropped unless the effective mode is listed (2.6)', async () => {
    const allowed = [mode({ requestBodyMode: BodyMode.STREAMED })];
    await run(overrideBody, { filter: extProcConfig({ allowModeOverride: true }), newer: { allowedOverrideModes: allowed } }, async (s) => {
      const r = await s.request({ method: 'POST', path: '/', authority: 'h', body: 'abc' });
      assert.deepEqual(kinds(r.sent), ['requestHeaders', 'responseHeaders']);
    });
    await run(overrideBody, { filter: extProcConfig({ allowModeOverride: true }), newer: { allowedOverrideModes: [mode({ requestBodyMode: BodyMode.BUFFERED })] } }, async (s) => {
      const r = await s.request({ method: 'POST', path: '/', authority: 'h', body: 'abc' });
      assert.deepEqual(kinds(r.sent), ['requestHeaders', 'requestBody', 'responseHeaders']);
    });
  });
});

describe('message_timeout (4)', () => {
  test('no answer → 504 ext_proc_error_per-message_timeout_exceeded; fail-open with failure_mode_allow (4.3, 4.4)', async () => {
    const silent: StreamScript = async (ctx) => { await ctx.next(); await ctx.next(); };
    await run(silent, { filter: extProcConfig({ messageTimeout: durationFromMs(50) }) }, async (s, p) => {
      const t0 = Date.now();
      const r = await s.request(GET);
      assert.equal(r.status, 504);
      assert.equal(r.details, 'ext_proc_error_per-message_timeout_exceeded');
      assert.equal(r.counters.message_timeouts, 1);
      assert.ok(Date.now() - t0 >= 45);
      await within(p.streams[0]?.done);
      assert.equal(p.streams[0]?.cancelled, true);
    });
    await run(silent, { filter: extProcConfig({ messageTimeout: durationFromMs(50), failureModeAllow: true }) }, async (s) => {
      const r = await s.request(GET);
      assert.equal(r.status, 200);
      assert.equal(r.counters.failure_mode_allowed, 1);
    });
  });

  test('default timeout is 200 ms (4.1)', async () => {
    // An answer after ~100 ms is in time; one after ~300 ms is not (100 ms margin either side).
    const answerAfter = (ms: number): StreamScript => async (ctx) => {
      const m = await ctx.next();
      await sleep(ms);
      ctx.send(continueFor(m!));
      await ctx.next();
    };
    // messageTimeout unset: Envoy's own default, not the harness's generous one
    await run(answerAfter(100), { filter: extProcConfig({ messageTimeout: undefined, processingMode: mode({ responseHeaderMode: HeaderMode.SKIP }) }) }, async (s) => {
      assert.equal((await s.request(GET)).status, 200);
    });
    await run(answerAfter(300), { filter: extProcConfig({ messageTimeout: undefined, processingMode: mode({ responseHeaderMode: HeaderMode.SKIP }) }) }, async (s) => {
      const t0 = Date.now();
      const r = await s.request(GET);
      assert.equal(r.status, 504);
      assert.ok(Date.now() - t0 >= 190);
    });
  });

  test('override_message_timeout extends the timer only within max_message_timeout and is not an answer (4.5, 4.6)', async () => {
    const extendThenAnswer: StreamScript = async (ctx) => {
      const m = await ctx.next();
      ctx.send({ ...continueFor(m!), overrideMessageTimeout: durationFromMs(300) }); // not an answer
      await sleep(120);
      ctx.send(continueFor(m!));
      for (;;) {
        const n = await ctx.next();
        if (n === undefined) return;
        ctx.send(continueFor(n));
      }
    };
    await run(extendThenAnswer, { filter: extProcConfig({ messageTimeout: durationFromMs(60), maxMessageTimeout: durationFromMs(500) }) }, async (s) => {
      const r = await s.request(GET);
      assert.equal(r.status, 200);
      assert.equal(r.counters.override_message_timeout_received, 1);
    });
    await run(extendThenAnswer, { filter: extProcConfig({ messageTimeout: durationFromMs(60) }) }, async (s) => {
      const r = await s.request(GET);
      assert.equal(r.status, 504);
      assert.equal(r.counters.override_message_timeout_ignored, 1);
    });
  });
});

describe('header mutation limits and rules (5)', () => {
  test('disallow_is_error → 500 header_mutation_set_headers_failed; remove of :path ignored (5.10, 5.12)', async () => {
    await run(answerEach((m) => continueFor(m, { headerMutation: mutation([setRaw('x-envoy-foo', '1')]) })), { filter: extProcConfig({ mutationRules: { disallowIsError: true } }) }, async (s) => {
      const r = await s.request(GET);
      assert.equal(r.status, 500);
      assert.equal(r.details, 'header_mutation_set_headers_failed');
    });
    await run(answerEach((m) => continueFor(m, { headerMutation: mutation([], [':path', 'x-gone']) })), { filter: extProcConfig() }, async (s) => {
      const r = await s.request({ ...GET, path: '/keep', headers: [['x-gone', '1']] });
      assert.equal(r.upstreamRequest?.path, '/keep');
      assert.equal(get(r.upstreamRequest?.headers ?? [], 'x-gone'), undefined);
      assert.ok(r.counters.rejected_header_mutations >= 1);
    });
  });

  test('allow_envoy / allow_all_routing rules permit x-envoy-* and :authority (5.13)', async () => {
    await run(answerEach((m, i) => i === 0 ? continueFor(m, { headerMutation: mutation([setRaw('x-envoy-foo', '1'), setRaw(':authority', 'new.example')]) }) : continueFor(m)),
      { filter: extProcConfig({ mutationRules: { allowEnvoy: true, allowAllRouting: true } }) }, async (s) => {
        const r = await s.request(GET);
        assert.equal(get(r.upstreamRequest?.headers ?? [], 'x-envoy-foo'), '1');
        assert.equal(get(r.upstreamRequest?.headers ?? [], 'host'), 'new.example');
      });
  });

  test('more set_headers than max_headers_count → 500 header_mutation_operation_count_exceeds_limit (5.6); result too big → header_mutation_result_exceeds_limit (5.7)', async () => {
    const many = Array.from({ length: 5 }, (_, i) => setRaw(`x-h${i}`, 'v'));
    await run(answerEach((m) => continueFor(m, { headerMutation: mutation(many) })), { filter: extProcConfig(), maxHeadersCount: 4 }, async (s) => {
      const r = await s.request(GET);
      assert.equal(r.status, 500);
      assert.equal(r.details, 'header_mutation_operation_count_exceeds_limit');
    });
    await run(answerEach((m) => continueFor(m, { headerMutation: mutation([setRaw('x-big', 'a'.repeat(2000))]) })), { filter: extProcConfig(), maxHeadersKb: 1 }, async (s) => {
      const r = await s.request(GET);
      assert.equal(r.status, 500);
      assert.equal(r.details, 'header_mutation_result_exceeds_limit');
    });
  });

  test(':status may be changed on response headers, but not below 200 (5.9, 5.11)', async () => {
    await run(answerEach((m) => m.request.case === 'responseHeaders' ? continueFor(m, { headerMutation: mutation([setRaw(':status', '201')]) }) : continueFor(m)), { filter: extProcConfig() }, async (s) => {
      assert.equal((await s.request(GET)).status, 201);
    });
    await run(answerEach((m) => m.request.case === 'responseHeaders' ? continueFor(m, { headerMutation: mutation([setRaw(':status', '101')]) }) : continueFor(m)), { filter: extProcConfig() }, async (s) => {
      const r = await s.request(GET);
      assert.equal(r.status, 200);
      assert.equal(r.counters.rejected_header_mutations, 1);
    });
  });
});

describe('body mutations (6)', () => {
  const buffered = extProcConfig({ processingMode: mode({ requestBodyMode: BodyMode.BUFFERED, responseHeaderMode: HeaderMode.SKIP }) });
  const replaceBody = (withLength?: string): StreamScript => answerEach((m) => m.request.case === 'requestBody'
    ? continueFor(m, { ...(withLength === undefined ? {} : { headerMutation: mutation([setRaw('content-length', withLength)]) }), bodyMutation: { mutation: { case: 'body', value: Buffer.from('hello!') } } })
    : continueFor(m));

  test('content-length kept in BUFFERED; mismatch with the mutated body → 500 (6.2)', async () => {
    await run(replaceBody(), { filter: buffered }, async (s) => {
      const r = await s.request({ method: 'POST', path: '/', authority: 'h', headers: [['content-length', '3']], body: 'abc' });
      assert.equal(r.status, 500);
      assert.equal(r.details, 'mismatch_between_content_length_and_the_length_of_the_mutated_body');
    });
    await run(replaceBody('6'), { filter: buffered }, async (s) => {
      const r = await s.request({ method: 'POST', path: '/', authority: 'h', headers: [['content-length', '3']], body: 'abc' });
      assert.equal(r.status, 200);
      assert.equal(r.upstreamRequest?.body.toString(), 'hello!');
      assert.equal(get(r.upstreamRequest?.headers ?? [], 'content-length'), '6');
    });
  });

  test('CONTINUE_AND_REPLACE on request headers: body created for a GET, no further messages for that direction (6.7)', async () => {
    await run(answerEach((m) => m.request.case === 'requestHeaders'
      ? continueFor(m, { status: ResponseStatus.CONTINUE_AND_REPLACE, bodyMutation: { mutation: { case: 'body', value: Buffer.from('made up') } }, headerMutation: mutation([setRaw(':method', 'POST')]) })
      : continueFor(m)), { filter: extProcConfig({ processingMode: mode({ requestBodyMode: BodyMode.BUFFERED, responseHeaderMode: HeaderMode.SKIP }) }) }, async (s) => {
      const r = await s.request({ method: 'GET', path: '/', authority: 'h' });
      assert.equal(r.status, 200);
      assert.deepEqual(kinds(r.sent), ['requestHeaders']);
      assert.equal(r.upstreamRequest?.method, 'POST'); // 5.14: :method allowed with CONTINUE_AND_REPLACE
      assert.equal(r.upstreamRequest?.body.toString(), 'made up');
    });
  });

  test('CONTINUE (default) on a headers answer ignores body_mutation (6.8)', async () => {
    await run(answerEach((m) => continueFor(m, { bodyMutation: { mutation: { case: 'body', value: Buffer.from('no') } } })), { filter: extProcConfig() }, async (s) => {
      const r = await s.request({ method: 'POST', path: '/', authority: 'h', body: 'orig' });
      assert.equal(r.upstreamRequest?.body.toString(), 'orig');
    });
  });
});

describe('ImmediateResponse (7)', () => {
  test('status <200 → 200; empty body strips content-type; x-envoy-* header ignored; details with spaces → _ (7.3, 7.4, 7.5, 5.19)', async () => {
    await run(answerEach(() => immediate({
      status: { code: StatusCode.Continue },
      headers: mutation([setRaw('content-type', 'application/json'), setRaw('x-envoy-nope', '1'), setRaw('x-ok', 'y')]),
      details: 'my details',
    })), { filter: extProcConfig() }, async (s, p) => {
      const r = await s.request(GET);
      assert.equal(r.status, 200);
      assert.equal(r.body.length, 0);
      assert.equal(get(r.headers, 'content-type'), undefined);
      assert.equal(get(r.headers, 'content-length'), undefined);
      assert.equal(get(r.headers, 'x-envoy-nope'), undefined);
      assert.equal(get(r.headers, 'x-ok'), 'y');
      assert.equal(r.details, 'my_details');
      assert.equal(r.upstreamRequest, undefined);
      assert.deepEqual(kinds(r.sent), ['requestHeaders']); // 7.2: no response_headers for its own reply
      await within(p.streams[0]?.done);
      assert.equal(p.streams[0]?.cancelled, true);
    });
  });

  test('body sets content-length and text/plain unless the server set content-type (7.4)', async () => {
    await run(answerEach(() => immediate({ status: { code: StatusCode.Forbidden }, body: Buffer.from('denied') })), { filter: extProcConfig() }, async (s) => {
      const r = await s.request(GET);
      assert.equal(r.status, 403);
      assert.equal(r.body.toString(), 'denied');
      assert.equal(get(r.headers, 'content-type'), 'text/plain');
      assert.equal(get(r.headers, 'content-length'), '6');
    });
  });

  test('gRPC downstream: HTTP 200, grpc-status mapped from 403 → 7 or taken from grpc_status; grpc-message percent-encoded (7.6)', async () => {
    await run(answerEach(() => immediate({ status: { code: StatusCode.Forbidden }, body: Buffer.from('no 100%') })), { filter: extProcConfig() }, async (s) => {
      const r = await s.request({ method: 'POST', path: '/a.B/C', authority: 'h', headers: [['content-type', 'application/grpc']], body: 'x' });
      assert.equal(r.status, 200);
      assert.equal(get(r.headers, 'grpc-status'), '7');
      assert.equal(get(r.headers, 'grpc-message'), 'no 100%25');
      assert.equal(get(r.headers, 'content-type'), 'application/grpc');
    });
    await run(answerEach(() => immediate({ status: { code: StatusCode.Forbidden }, grpcStatus: { status: 16 } })), { filter: extProcConfig() }, async (s) => {
      const r = await s.request({ method: 'POST', path: '/a.B/C', authority: 'h', headers: [['content-type', 'application/grpc']], body: 'x' });
      assert.equal(get(r.headers, 'grpc-status'), '16');
    });
  });

  test('immediate_response to response_headers replaces the upstream response (7.7)', async () => {
    await run(answerEach((m) => m.request.case === 'responseHeaders' ? immediate({ status: { code: StatusCode.BadGateway }, body: Buffer.from('replaced') }) : continueFor(m)), { filter: extProcConfig() }, async (s) => {
      const r = await s.request(GET);
      assert.equal(r.status, 502);
      assert.equal(r.body.toString(), 'replaced');
      assert.ok(r.upstreamRequest !== undefined);
    });
  });
});

describe('metadata (8) and per-route config (9)', () => {
  test('dynamic_metadata accepted only for receiving namespaces; forwarding namespaces in metadata_context (8.4, 8.5)', async () => {
    const script = answerEach((m) => ({ ...continueFor(m), dynamicMetadata: { allowed: { k: 'v' }, other: { x: 1 } } }));
    await run(script, { filter: extProcConfig() }, async (s) => {
      const r = await s.request(GET);
      assert.deepEqual(r.dynamicMetadata, {});
    });
    await run(script, { filter: extProcConfig({ metadataOptions: { receivingNamespaces: { untyped: ['allowed'] }, forwardingNamespaces: { untyped: ['jwt'] } } }) }, async (s) => {
      const r = await s.request(GET, { dynamicMetadata: { jwt: { sub: 'alice' }, hidden: { a: 1 } } });
      assert.deepEqual(r.dynamicMetadata.allowed, { k: 'v' });
      assert.equal(r.dynamicMetadata.other, undefined);
      assert.deepEqual(Object.keys(r.sent[0]?.metadataContext?.filterMetadata ?? {}), ['jwt']);
      assert.deepEqual(r.sent[0]?.metadataContext?.filterMetadata.jwt, { sub: 'alice' });
    });
  });

  test('per-route disabled opens no stream; overrides.processing_mode replaces the mode with proto defaults (9.1, 9.2)', async () => {
    await run(answerEach(), { filter: extProcConfig(), perRoute: create(ExtProcPerRouteSchema, { override: { case: 'disabled', value: true } }) }, async (s, p) => {
      const r = await s.request(GET);
      assert.equal(r.status, 200);
      assert.equal(r.sent.length, 0);
      assert.equal(p.streams.length, 0);
    });
    await run(answerEach(), {
      filter: extProcConfig({ processingMode: mode({ requestBodyMode: BodyMode.BUFFERED, responseHeaderMode: HeaderMode.SKIP }) }),
      perRoute: create(ExtProcPerRouteSchema, { override: { case: 'overrides', value: { processingMode: mode({ requestTrailerMode: HeaderMode.SKIP }) } } }),
    }, async (s) => {
      const r = await s.request({ method: 'POST', path: '/', authority: 'h', body: 'b' });
      assert.deepEqual(kinds(r.sent), ['requestHeaders', 'responseHeaders']);
    });
  });

  test('a more specific overrides cancels a less specific disabled; grpc_initial_metadata merged by key (9.4, 9.8, 10.6)', async () => {
    const svc = create(GrpcServiceSchema, {
      targetSpecifier: { case: 'envoyGrpc', value: { clusterName: 'proc' } },
      initialMetadata: [create(HeaderValueSchema, { key: 'x-a', value: 'filter' }), create(HeaderValueSchema, { key: 'x-rid', value: '%REQ(x-request-id)%' })],
    });
    await run(answerEach(), {
      filter: extProcConfig({ grpcService: svc }),
      perRoute: [
        create(ExtProcPerRouteSchema, { override: { case: 'disabled', value: true } }),
        create(ExtProcPerRouteSchema, { override: { case: 'overrides', value: { grpcInitialMetadata: [create(HeaderValueSchema, { key: 'x-a', value: 'route' })] } } }),
      ],
    }, async (s, p) => {
      const r = await s.request({ ...GET, headers: [['x-request-id', 'rid-7']] });
      assert.equal(r.sent.length, 2);
      const md = p.streams[0]?.metadata ?? {};
      assert.equal(md['x-a'], 'route');
      assert.equal(md['x-rid'], 'rid-7');
      assert.equal(md['x-envoy-internal'], 'true');
      assert.equal(p.streams[0]?.authority, 'proc');
    });
  });
});

describe('per-route grpc_service (9.3) and router local replies (1.19)', () => {
  test('overrides.grpc_service sends this request\'s stream to another cluster', async () => {
    const other = await startFakeProcessor(answerEach());
    try {
      await run(answerEach(), {
        filter: extProcConfig(),
        clusters: { other: other.address },
        perRoute: create(ExtProcPerRouteSchema, { override: { case: 'overrides', value: { grpcService: create(GrpcServiceSchema, { targetSpecifier: { case: 'envoyGrpc', value: { clusterName: 'other' } } }) } } }),
      }, async (s, p) => {
        const r = await s.request(GET);
        assert.equal(r.status, 200);
        assert.equal(p.streams.length, 0);
        assert.equal(other.streams.length, 1);
        assert.equal(other.streams[0]?.authority, 'other');
      });
    } finally {
      await other.close();
    }
  });

  test('a router 503 (upstream unreachable) is sent to the processor as response_headers (1.19)', async () => {
    const p = await startFakeProcessor(answerEach());
    const s = new ExtProcStandIn({ processorAddress: p.address, upstream: { host: '127.0.0.1', port: 1 }, filter: extProcConfig() });
    try {
      const r = await s.request(GET);
      assert.equal(r.status, 503);
      assert.equal(r.details, 'upstream_reset_before_response_started{connection_failure}');
      assert.deepEqual(kinds(r.sent), ['requestHeaders', 'responseHeaders']);
      assert.equal(get(headersOf(r.sent[1]).headers?.headers.map((h) => [h.key, Buffer.from(h.rawValue).toString()] as [string, string]) ?? [], ':status'), '503');
    } finally {
      s.close();
      await p.close();
    }
  });
});

describe('stream lifecycle (10)', () => {
  test('client abort while an answer is outstanding → processor sees cancellation, nothing more is sent (10.5)', async () => {
    let seen: ProcessingRequest[] = [];
    await run(async (ctx) => {
      await ctx.next();
      await ctx.next(5000);
      seen = ctx.stream.received;
    }, { filter: extProcConfig({ messageTimeout: durationFromMs(5000) }) }, async (s, p) => {
      const r = await s.request(GET, { abortAfterMs: 50 });
      assert.equal(r.clientAborted, true);
      await within(p.streams[0]?.done);
      assert.equal(p.streams[0]?.cancelled, true);
      assert.equal(r.upstreamRequest, undefined);
    });
    assert.equal(seen.length, 1);
  });

  test('every message is sent without END_STREAM; Envoy closes after the last needed answer (10.2, 10.3)', async () => {
    let halfClosedBeforeLast = true;
    await run(async (ctx) => {
      for (let i = 0; i < 10; i++) {
        const m = await ctx.next();
        if (m === undefined) return;
        if (i === 0) halfClosedBeforeLast = ctx.stream.halfClosed;
        ctx.send(continueFor(m));
      }
    }, { filter: extProcConfig() }, async (s, p) => {
      const r = await s.request(GET);
      assert.equal(r.status, 200);
      assert.equal(r.streamClosedBy, 'envoy');
      await within(p.streams[0]?.done);
      // 10.4: half-close, then reset.
      assert.equal(p.streams[0]?.halfClosed, true);
      assert.equal(p.streams[0]?.cancelled, true);
    });
    assert.equal(halfClosedBeforeLast, false);
  });

  test('response headers SKIP: stream closed right after the request_headers answer, before the upstream answers (10.3)', async () => {
    await run(answerEach(), { filter: extProcConfig({ processingMode: mode({ responseHeaderMode: HeaderMode.SKIP }) }) }, async (s, p) => {
      upstream.enqueue({ status: 200, body: 'slow', delayMs: 400 });
      const t0 = Date.now();
      const pending = s.request(GET);
      for (let i = 0; i < 100 && p.streams[0]?.cancelled !== true; i++) await sleep(5);
      assert.equal(p.streams[0]?.cancelled, true);
      assert.ok(Date.now() - t0 < 400);
      const r = await pending;
      assert.equal(r.body.toString(), 'slow');
    });
  });

  test('x-request-id from the client is kept and reaches the processor (1.3)', async () => {
    await run(answerEach(), { filter: extProcConfig() }, async (s) => {
      const r = await s.request({ ...GET, headers: [['x-request-id', 'given']] });
      assert.equal(get(headersOf(r.sent[0]).headers?.headers.map((h) => [h.key, Buffer.from(h.rawValue).toString()] as [string, string]) ?? [], 'x-request-id'), 'given');
    });
  });
});
