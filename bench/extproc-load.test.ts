import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { equals, toBinary } from '@bufbuild/protobuf';
import { ProcessingRequestSchema } from '../src/gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import { startCeilingServer, type RunningServer } from './ceiling-server.js';
import {
  buildScenario,
  decodeRequests,
  frameMessages,
  latencyFromLog,
  parseH2load,
  assertAllSucceeded,
  probeEnvoyStyle,
  runH2load,
  unframe,
  verifyEnvoyStyle,
  verifyPreFramed,
} from './extproc-load.js';
import { hasCommand } from './target.js';
import { skipUnlessCi } from '../test/support/requires.js';

describe('pre-framed Process bodies', () => {
  test('headers-only: request_headers then response_headers, raw_value only, pseudo-headers first', () => {
    const sc = buildScenario('headers-only');
    const decoded = decodeRequests(frameMessages(sc.messages));
    assert.deepEqual(decoded.map((m) => m.request.case), ['requestHeaders', 'responseHeaders']);
    decoded.forEach((m, i) => { assert.ok(equals(ProcessingRequestSchema, m, sc.messages[i]!)); });
    const first = decoded[0]!.request;
    assert.equal(first.case, 'requestHeaders');
    const headers = first.value.headers?.headers ?? [];
    assert.ok(headers.length >= 15, `${headers.length} request headers`);
    assert.ok(headers.every((h) => h.value === '' && h.rawValue.length > 0), 'Envoy sends raw_value, not value');
    const keys = headers.map((h) => h.key);
    assert.deepEqual(keys.slice(0, 4), [':authority', ':path', ':method', ':scheme']);
    for (const k of ['x-request-id', 'user-agent', 'authorization', 'traceparent']) assert.ok(keys.includes(k), k);
    assert.equal(first.value.endOfStream, true);
    const second = decoded[1]!.request;
    assert.equal(second.case, 'responseHeaders');
    const status = second.value.headers?.headers.find((h) => h.key === ':status');
    assert.equal(new TextDecoder().decode(status?.rawValue), '200');
  });

  test('with-bodies: headers and bodies in Envoy order, bodies end the stream', () => {
    const sc = buildScenario('with-bodies');
    const decoded = decodeRequests(frameMessages(sc.messages));
    assert.deepEqual(decoded.map((m) => m.request.case), ['requestHeaders', 'requestBody', 'responseHeaders', 'responseBody']);
    decoded.forEach((m, i) => { assert.ok(equals(ProcessingRequestSchema, m, sc.messages[i]!)); });
    const body = decoded[1]!.request;
    assert.ok(body.case === 'requestBody' && body.value.endOfStream && body.value.body.length > 0);
  });

  test('framing: 5-byte header per message, big-endian length, no compression', () => {
    const sc = buildScenario('headers-only');
    const framed = frameMessages(sc.messages);
    const len0 = toBinary(ProcessingRequestSchema, sc.messages[0]!).byteLength;
    assert.equal(framed[0], 0);
    assert.equal(framed.readUInt32BE(1), len0);
    assert.equal(unframe(framed).length, 2);
    assert.throws(() => unframe(framed.subarray(0, framed.length - 1)), /truncated/);
  });
});

describe('h2load output', () => {
  const ok = [
    'finished in 4.00s, 17050.67 req/s, 954.57KB/s',
    'requests: 51152 total, 51152 started, 51152 done, 51152 succeeded, 0 failed, 0 errored, 0 timeout',
    'status codes: 51072 2xx, 0 3xx, 0 4xx, 0 5xx',
    'traffic: 2.80MB (2932425) total, 291.09KB (298075) headers (space savings 96.33%), 798.77KB (817936) data',
  ].join('\n');

  test('parses the summary', () => {
    const s = parseH2load(ok);
    assert.equal(s.reqPerSec, 17050.67);
    assert.equal(s.finishedSec, 4);
    assert.equal(s.succeeded, 51152);
    assert.equal(s.status2xx, 51072);
    assert.equal(s.dataBytes, 817936);
    assert.doesNotThrow(() => { assertAllSucceeded(s, false); });
    // in a count-based run every request must be a 2xx
    assert.throws(() => { assertAllSucceeded(s, true); }, /51072 2xx/);
  });

  test('fails loudly on failures, non-2xx or missing lines', () => {
    assert.throws(() => { assertAllSucceeded(parseH2load(ok.replace('0 failed', '3 failed')), false); }, /3 failed/);
    assert.throws(() => { assertAllSucceeded(parseH2load(ok.replace('0 5xx', '7 5xx')), false); }, /non-2xx/);
    assert.throws(() => parseH2load('connect error'), /finished in/);
  });

  test('latency log: percentiles, warm-up skipped, failed streams rejected', () => {
    const t0 = 1_700_000_000_000_000;
    const rows = Array.from({ length: 100 }, (_, i) => `${t0 + 1_000_000 + i * 1000}\t200\t${(i + 1) * 10}`);
    rows.push(`${t0}\t200\t999999`); // in the skipped first second
    const s = latencyFromLog(rows.join('\n'), 1);
    assert.equal(s.samples, 100);
    assert.equal(s.p50Ms, 0.5);
    assert.equal(s.p99Ms, 0.99);
    assert.throws(() => latencyFromLog(`${t0}\t-1\t5\n`), /status -1/);
  });
});

describe('against the ceiling server', () => {
  let server: RunningServer;
  let dir: string;
  before(async () => {
    server = await startCeilingServer(0);
    dir = mkdtempSync(join(tmpdir(), 'extproc-load-test-'));
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('answers decode as the matching ProcessingResponse oneofs, grpc-status 0', async () => {
    for (const name of ['headers-only', 'with-bodies'] as const) {
      const sc = buildScenario(name);
      const pre = await verifyPreFramed(server.port, sc, 2);
      assert.deepEqual(pre.answerKinds, sc.messages.map((m) => m.request.case));
      const envoy = await verifyEnvoyStyle(server.port, sc, 2);
      assert.deepEqual(envoy.answerKinds, sc.messages.map((m) => m.request.case));
    }
  });

  test('the Envoy-style probe checks every stream', async () => {
    const p = await probeEnvoyStyle(server.port, buildScenario('with-bodies'), 40, 300);
    assert.ok(p.started >= 5, `${p.started} probes started`);
    assert.equal(p.failed, 0, p.errors.join('; '));
    assert.equal(p.ok, p.started);
    assert.ok(p.latency !== undefined && p.latency.p50Ms > 0);
  });

  test('a short bounded h2load run succeeds', async (t) => {
    const skip = skipUnlessCi(hasCommand('h2load'), 'h2load not installed (Debian: nghttp2-client): skipped');
    if (skip) {
      t.skip(skip);
      return;
    }
    const sc = buildScenario('headers-only');
    const dataFile = join(dir, 'body.bin');
    writeFileSync(dataFile, frameMessages(sc.messages));
    const logFile = join(dir, 'latency.log');
    const s = await runH2load({ port: server.port, dataFile, clients: 2, maxStreams: 4, durationSec: 0.5, logFile, timeoutMs: 15_000 });
    assert.ok(s.succeeded > 0 && s.status2xx > 0);
    assert.ok(s.dataBytes >= s.done * sc.messages.length * 5, 'every stream got its gRPC answers');
    const lat = latencyFromLog((await import('node:fs')).readFileSync(logFile, 'utf8'));
    assert.ok(lat.samples > 0 && lat.p50Ms > 0);
  });
});
