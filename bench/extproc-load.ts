// Load for an ext_proc server from h2load: the Process stream of one HTTP request, pre-framed as a
// gRPC request body (one 5-byte frame header + message per ProcessingRequest), POSTed to
// /envoy.service.ext_proc.v3.ExternalProcessor/Process over h2c.
//
// How this differs from Envoy: h2load sends every message of the stream at once and half-closes
// with the last DATA frame, then reads all answers; Envoy sends request_headers, waits for the
// answer, forwards the request upstream, later sends response_headers, waits again, then
// half-closes and resets. So h2load measures the server's processing cost per stream (its
// throughput ceiling) and one stream's whole service time, not Envoy's two round trips with the
// upstream in between. The per-message work on the server is the same.
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { Client, credentials, status as GrpcStatusCode, type ClientDuplexStream } from '@grpc/grpc-js';
import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { connect, constants as h2, type IncomingHttpHeaders } from 'node:http2';
import { HeaderMapSchema, HeaderValueSchema } from '../src/gen/envoy/config/core/v3/base_pb.js';
import {
  HttpBodySchema,
  HttpHeadersSchema,
  ProcessingRequestSchema,
  ProcessingResponseSchema,
  type ProcessingRequest,
  type ProcessingResponse,
} from '../src/gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import { extProcService } from '../src/envoy/grpc-services.js';

export const PROCESS_PATH = '/envoy.service.ext_proc.v3.ExternalProcessor/Process';

/** the scenarios buildScenario makes; 'e2ee' and 'signed' are made per run with their keys (bench/e2ee-route.ts, bench/signed-routes.ts) */
export type FixedScenarioName = 'headers-only' | 'with-bodies';
export type ScenarioName = FixedScenarioName | 'e2ee' | 'signed';

export interface Scenario {
  name: ScenarioName;
  /** in the order Envoy would send them on the stream */
  messages: ProcessingRequest[];
  /** beyond the answer kinds: throws unless a stream's answers are what the route must answer */
  check?: (answers: readonly ProcessingResponse[]) => void;
}

type Kind = ProcessingRequest['request']['case'] & string;

export function headerMap(pairs: readonly (readonly [string, string])[]) {
  const enc = new TextEncoder();
  // Envoy fills raw_value (bytes) and leaves value empty.
  return create(HeaderMapSchema, {
    headers: pairs.map(([key, v]) => create(HeaderValueSchema, { key, rawValue: enc.encode(v) })),
  });
}

/** An HTTP request as it reaches Envoy behind the mesh gateway: pseudo-headers first, as Envoy sends them. */
export function requestHeaderPairs(): [string, string][] {
  return [
    [':authority', 'api.example.com'],
    [':path', '/v1/accounts/8f14e45f/transfers?limit=20'],
    [':method', 'POST'],
    [':scheme', 'https'],
    ['content-type', 'application/json'],
    ['accept', 'application/json'],
    ['accept-encoding', 'gzip, br'],
    ['user-agent', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36'],
    ['authorization', 'Bearer eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLTQyIiwiYXVkIjoiYXBpIn0.c2lnbmF0dXJlLXBsYWNlaG9sZGVyLXNpZ25hdHVyZQ'],
    ['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
    ['x-request-id', '1f0e8c2a-6a55-4c57-9d1e-3c0f8b7a9e21'],
    ['x-forwarded-for', '203.0.113.7'],
    ['x-forwarded-proto', 'https'],
    ['x-envoy-external-address', '203.0.113.7'],
    ['content-length', '512'],
    ['cookie', 'session=6b1f7c9e0d2a4f3b8e5c; theme=dark'],
  ];
}

export function responseHeaderPairs(): [string, string][] {
  return [
    [':status', '200'],
    ['content-type', 'application/json'],
    ['content-length', '1024'],
    ['date', 'Tue, 24 Nov 2026 23:00:00 GMT'],
    ['x-envoy-upstream-service-time', '3'],
    ['cache-control', 'no-store'],
  ];
}

/** The Process stream of one HTTP request, as Envoy would send it for the route. */
export function buildScenario(name: FixedScenarioName): Scenario {
  const bodies = name === 'with-bodies';
  const reqHeaders = create(ProcessingRequestSchema, {
    request: { case: 'requestHeaders', value: create(HttpHeadersSchema, { headers: headerMap(requestHeaderPairs()), endOfStream: !bodies }) },
  });
  const respHeaders = create(ProcessingRequestSchema, {
    request: { case: 'responseHeaders', value: create(HttpHeadersSchema, { headers: headerMap(responseHeaderPairs()), endOfStream: !bodies }) },
  });
  if (!bodies) return { name, messages: [reqHeaders, respHeaders] };
  const reqBody = create(ProcessingRequestSchema, {
    request: { case: 'requestBody', value: create(HttpBodySchema, { body: jsonBody(512), endOfStream: true }) },
  });
  const respBody = create(ProcessingRequestSchema, {
    request: { case: 'responseBody', value: create(HttpBodySchema, { body: jsonBody(1024), endOfStream: true }) },
  });
  return { name, messages: [reqHeaders, reqBody, respHeaders, respBody] };
}

/** A JSON body of exactly `size` bytes, like a transfer request's. */
export function jsonBody(size: number): Uint8Array {
  const head = '{"amount":"125.00","currency":"EUR","to":"DE89370400440532013000","memo":"';
  const tail = '"}';
  return new TextEncoder().encode(head + 'x'.repeat(Math.max(0, size - head.length - tail.length)) + tail);
}

/** The body a requestBody or responseBody answer replaces the message's with, if it does. */
export function replacedBody(answer: ProcessingResponse | undefined): Uint8Array | undefined {
  const response = answer?.response;
  if (response?.case !== 'requestBody' && response?.case !== 'responseBody') return undefined;
  const mutation = response.value.response?.bodyMutation?.mutation;
  return mutation?.case === 'body' ? mutation.value : undefined;
}

/** The kinds of answer a server must send for these messages, in order. */
export function expectedAnswerKinds(messages: readonly ProcessingRequest[]): Kind[] {
  return messages.map((m) => {
    if (m.request.case === undefined) throw new Error('empty ProcessingRequest in scenario');
    return m.request.case;
  });
}

/** gRPC length-prefixed framing: per message, 1 byte compressed flag (0), 4 bytes big-endian length. */
export function frameMessages(messages: readonly ProcessingRequest[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of messages) {
    const bytes = toBinary(ProcessingRequestSchema, m);
    const head = Buffer.alloc(5);
    head.writeUInt8(0, 0);
    head.writeUInt32BE(bytes.byteLength, 1);
    parts.push(head, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }
  return Buffer.concat(parts);
}

/** Splits a gRPC length-prefixed body into its messages' bytes; throws on a truncated or compressed frame. */
export function unframe(body: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  const view = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  let at = 0;
  while (at < view.length) {
    if (view.length - at < 5) throw new Error(`truncated gRPC frame header at byte ${at}`);
    if (view.readUInt8(at) !== 0) throw new Error(`compressed gRPC frame at byte ${at}: not expected`);
    const len = view.readUInt32BE(at + 1);
    if (view.length - at - 5 < len) throw new Error(`truncated gRPC message at byte ${at}: ${len} bytes announced`);
    out.push(view.subarray(at + 5, at + 5 + len));
    at += 5 + len;
  }
  return out;
}

export function decodeRequests(body: Uint8Array): ProcessingRequest[] {
  return unframe(body).map((b) => fromBinary(ProcessingRequestSchema, b));
}

export function decodeResponses(body: Uint8Array): ProcessingResponse[] {
  return unframe(body).map((b) => fromBinary(ProcessingResponseSchema, b));
}

// ---------------------------------------------------------------------------------------------
// Verification: the exact bytes h2load sends, over node:http2, with the answers decoded.

export interface VerifyResult {
  streams: number;
  grpcStatus: string;
  answerKinds: string[];
}

/**
 * POSTs the pre-framed body `streams` times (sequentially) the way h2load does, and checks each
 * stream: HTTP 200, grpc-status 0 in the trailers, and one ProcessingResponse per request, each
 * of the matching oneof kind. Throws on the first deviation.
 */
export async function verifyPreFramed(port: number, scenario: Scenario, streams = 3, timeoutMs = 5000): Promise<VerifyResult> {
  const body = frameMessages(scenario.messages);
  const expected = expectedAnswerKinds(scenario.messages);
  const session = connect(`http://127.0.0.1:${port}`);
  session.on('error', () => { /* surfaced through the request below */ });
  try {
    let last: VerifyResult | undefined;
    for (let i = 0; i < streams; i++) {
      const { status, trailers, data } = await new Promise<{ status: number; trailers: Record<string, unknown>; data: Buffer }>((resolve, reject) => {
        const timer = setTimeout(() => { reject(new Error(`no complete answer within ${timeoutMs} ms`)); }, timeoutMs);
        const req = session.request({
          [h2.HTTP2_HEADER_METHOD]: 'POST',
          [h2.HTTP2_HEADER_PATH]: PROCESS_PATH,
          'content-type': 'application/grpc',
          te: 'trailers',
        });
        let status = 0;
        let trailers: Record<string, unknown> = {};
        const chunks: Buffer[] = [];
        req.on('response', (h) => {
          status = Number(h[h2.HTTP2_HEADER_STATUS]);
          // a trailers-only answer (an error) carries grpc-status in the headers
          if (h['grpc-status'] !== undefined) trailers = { ...h };
        });
        req.on('trailers', (t: IncomingHttpHeaders) => { trailers = { ...t }; });
        req.on('data', (c: Buffer) => { chunks.push(c); });
        req.on('end', () => { clearTimeout(timer); resolve({ status, trailers, data: Buffer.concat(chunks) }); });
        req.on('error', (e: Error) => { clearTimeout(timer); reject(e); });
        req.end(body);
      });
      if (status !== 200) throw new Error(`HTTP status ${status}, expected 200`);
      const grpcStatus = String(trailers['grpc-status']);
      if (grpcStatus !== '0') throw new Error(`grpc-status ${grpcStatus} (${String(trailers['grpc-message'])}), expected 0`);
      const answers = decodeResponses(data);
      const kinds = answers.map((r) => r.response.case ?? '(empty)');
      if (kinds.join(',') !== expected.join(',')) throw new Error(`answers ${kinds.join(',')}, expected ${expected.join(',')}`);
      scenario.check?.(answers);
      last = { streams: i + 1, grpcStatus, answerKinds: kinds };
    }
    if (last === undefined) throw new Error('no stream verified');
    return last;
  } finally {
    session.close();
  }
}

/**
 * One stream the Envoy way, over grpc-js: send one message, wait for its answer and check its kind,
 * then the next; then half-close and expect grpc-status 0. Resolves with the answer kinds and the
 * stream's duration; rejects on the first deviation or after `timeoutMs` without progress.
 */
export async function envoyStyleStream(client: Client, scenario: Scenario, timeoutMs: number): Promise<{ kinds: string[]; ms: number }> {
  const expected = expectedAnswerKinds(scenario.messages);
  const def = extProcService.process;
  const t0 = performance.now();
  const call: ClientDuplexStream<ProcessingRequest, ProcessingResponse> = client.makeBidiStreamRequest(
    def.path, def.requestSerialize, def.responseDeserialize,
  );
  const answers: ProcessingResponse[] = [];
  let waiting: ((r: ProcessingResponse) => void) | undefined;
  let failed: ((e: Error) => void) | undefined;
  call.on('data', (r: ProcessingResponse) => {
    if (waiting !== undefined) { const w = waiting; waiting = undefined; w(r); } else answers.push(r);
  });
  const ended = new Promise<void>((resolve, reject) => {
    call.on('status', (st: { code: number; details: string }) => {
      if (st.code === (GrpcStatusCode.OK as number)) resolve();
      else reject(new Error(`grpc-status ${st.code}: ${st.details}`));
    });
    call.on('error', (e: Error) => { failed?.(e); reject(e); });
  });
  ended.catch(() => { /* awaited below */ });
  const within = <T>(p: Promise<T>, what: string): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      p,
      new Promise<never>((_, reject) => { timer = setTimeout(() => { reject(new Error(`${what} within ${timeoutMs} ms`)); }, timeoutMs); }),
    ]).finally(() => { clearTimeout(timer); });
  };
  const next = (): Promise<ProcessingResponse> => {
    const queued = answers.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return within(new Promise<ProcessingResponse>((resolve, reject) => {
      waiting = resolve;
      failed = reject;
    }), 'no answer');
  };
  const kinds: string[] = [];
  const received: ProcessingResponse[] = [];
  try {
    for (const [j, m] of scenario.messages.entries()) {
      call.write(m);
      const answer = await next();
      received.push(answer);
      const kind = answer.response.case ?? '(empty)';
      kinds.push(kind);
      if (kind !== expected[j]) throw new Error(`answer ${j + 1} is ${kind}, expected ${String(expected[j])}`);
    }
    call.end();
    await within(ended, 'no grpc-status after half-close');
    const ms = performance.now() - t0; // the check is the client's work, not the stream's
    scenario.check?.(received);
    return { kinds, ms };
  } catch (e) {
    call.cancel();
    throw e;
  }
}

/** `streams` sequential Envoy-style streams (see envoyStyleStream); throws on the first deviation. */
export async function verifyEnvoyStyle(port: number, scenario: Scenario, streams = 3, timeoutMs = 5000): Promise<VerifyResult> {
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  try {
    let kinds: string[] = [];
    for (let i = 0; i < streams; i++) kinds = (await envoyStyleStream(client, scenario, timeoutMs)).kinds;
    return { streams, grpcStatus: '0', answerKinds: kinds };
  } finally {
    client.close();
  }
}

export interface ProbeResult {
  started: number;
  ok: number;
  failed: number;
  /** the first few failure messages */
  errors: string[];
  /** Envoy-style stream durations (send, wait, send, wait, half-close, status) of the successful probes */
  latency?: { p50Ms: number; p99Ms: number; maxMs: number };
}

/**
 * Envoy-style streams at a low fixed rate on their own connection, checked one by one, for
 * `durationMs`: run beside h2load, it shows whether the answers stay right under load (h2load only
 * sees HTTP 200) and what one Envoy-style stream takes while the server is busy.
 */
export async function probeEnvoyStyle(port: number, scenario: Scenario, ratePerSec: number, durationMs: number, timeoutMs = 5000): Promise<ProbeResult> {
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  const result: ProbeResult = { started: 0, ok: 0, failed: 0, errors: [] };
  const latencies: number[] = [];
  const pending: Promise<void>[] = [];
  const interval = 1000 / ratePerSec;
  const t0 = performance.now();
  try {
    await new Promise<void>((resolve) => { client.waitForReady(Date.now() + timeoutMs, () => { resolve(); }); });
    const most = Math.ceil((ratePerSec * durationMs) / 1000);
    for (let i = 0; i < most && performance.now() - t0 < durationMs; i++) {
      result.started++;
      pending.push(envoyStyleStream(client, scenario, timeoutMs).then(
        (r) => { result.ok++; latencies.push(r.ms); },
        (e: unknown) => {
          result.failed++;
          if (result.errors.length < 5) result.errors.push(e instanceof Error ? e.message : String(e));
        },
      ));
      const wait = t0 + (i + 1) * interval - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    await Promise.all(pending);
  } finally {
    client.close();
  }
  if (latencies.length > 0) {
    latencies.sort((a, b) => a - b);
    result.latency = { p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), maxMs: latencies[latencies.length - 1]! };
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// h2load

export interface H2loadOptions {
  port: number;
  /** the pre-framed body, written to this file beforehand */
  dataFile: string;
  clients: number;
  maxStreams: number;
  /** timing-based run: measured seconds (h2load -D) */
  durationSec?: number;
  warmUpSec?: number;
  /** count-based run (h2load -n) */
  requests?: number;
  /** per-client rate limit (h2load --rps) */
  rpsPerClient?: number;
  /**
   * h2load --timing-script-file: each client sends one request at each offset (ms) of the script,
   * so arrivals are evenly spaced instead of --rps's bursts every 10 ms.
   */
  timingScriptFile?: string;
  logFile?: string;
  /** CPU list for taskset, e.g. "1" */
  cpu?: string;
  /** hard limit on h2load's wall time; it is killed after this */
  timeoutMs: number;
}

export interface H2loadSummary {
  command: string[];
  finishedSec: number;
  reqPerSec: number;
  total: number;
  started: number;
  done: number;
  succeeded: number;
  failed: number;
  errored: number;
  timeout: number;
  status2xx: number;
  status3xx: number;
  status4xx: number;
  status5xx: number;
  /** response DATA bytes (gRPC frames) over the whole run */
  dataBytes: number;
}

/** h2load takes whole seconds or a unit ("500ms"), not "0.5". */
export function h2loadDuration(sec: number): string {
  if (!(sec > 0) || !Number.isFinite(sec)) throw new Error(`not a duration: ${sec}`);
  return Number.isInteger(sec) ? String(sec) : `${Math.max(1, Math.round(sec * 1000))}ms`;
}

export function h2loadArgs(o: H2loadOptions): string[] {
  const args = [
    '-c', String(o.clients),
    '-m', String(o.maxStreams),
    '-t', '1',
    '-d', o.dataFile,
    '-H', 'content-type: application/grpc',
    '-H', 'te: trailers',
  ];
  if (o.timingScriptFile !== undefined) {
    // the script gives the URIs and the request count; -D and --rps do not combine with it
    args.push(`--timing-script-file=${o.timingScriptFile}`);
    if (o.logFile !== undefined) args.push(`--log-file=${o.logFile}`);
    return o.cpu !== undefined ? ['taskset', '-c', o.cpu, 'h2load', ...args] : ['h2load', ...args];
  }
  if (o.durationSec !== undefined) {
    args.push('-D', h2loadDuration(o.durationSec));
    if (o.warmUpSec !== undefined && o.warmUpSec > 0) args.push(`--warm-up-time=${h2loadDuration(o.warmUpSec)}`);
  }
  if (o.requests !== undefined) args.push('-n', String(o.requests));
  if (o.rpsPerClient !== undefined) args.push(`--rps=${o.rpsPerClient}`);
  if (o.logFile !== undefined) args.push(`--log-file=${o.logFile}`);
  args.push(`http://127.0.0.1:${o.port}${PROCESS_PATH}`);
  return o.cpu !== undefined ? ['taskset', '-c', o.cpu, 'h2load', ...args] : ['h2load', ...args];
}

function num(text: string, re: RegExp, what: string): number {
  const m = re.exec(text);
  if (m?.[1] === undefined) throw new Error(`h2load output: could not find ${what}\n${text}`);
  const v = Number(m[1]);
  if (!Number.isFinite(v)) throw new Error(`h2load output: ${what} is not a number: ${m[1]}`);
  return v;
}

/** Parses h2load's summary; throws unless every request succeeded with a 2xx. */
export function parseH2load(stdout: string, command: string[] = []): H2loadSummary {
  const durationUnit: Record<string, number> = { s: 1, ms: 1e-3, us: 1e-6 };
  const fin = /finished in ([\d.]+)(s|ms|us), ([\d.]+) req\/s/.exec(stdout);
  if (fin?.[1] === undefined || fin[2] === undefined || fin[3] === undefined) throw new Error(`h2load output: no "finished in" line\n${stdout}`);
  const s: H2loadSummary = {
    command,
    finishedSec: Number(fin[1]) * (durationUnit[fin[2]] ?? Number.NaN),
    reqPerSec: Number(fin[3]),
    total: num(stdout, /requests: (\d+) total/, 'requests total'),
    started: num(stdout, /(\d+) started/, 'started'),
    done: num(stdout, /(\d+) done/, 'done'),
    succeeded: num(stdout, /(\d+) succeeded/, 'succeeded'),
    failed: num(stdout, /(\d+) failed/, 'failed'),
    errored: num(stdout, /(\d+) errored/, 'errored'),
    timeout: num(stdout, /(\d+) timeout/, 'timeout'),
    status2xx: num(stdout, /status codes: (\d+) 2xx/, '2xx'),
    status3xx: num(stdout, /(\d+) 3xx/, '3xx'),
    status4xx: num(stdout, /(\d+) 4xx/, '4xx'),
    status5xx: num(stdout, /(\d+) 5xx/, '5xx'),
    dataBytes: num(stdout, /\((\d+)\) data/, 'data bytes'),
  };
  return s;
}

/**
 * Throws unless the run did work and every finished request was a success. In a count-based run
 * (-n) every request must have finished with a 2xx; in a timing-based run (-D) h2load's status
 * counts and its done count cover slightly different windows, so only their absence of failures is
 * checked.
 */
export function assertAllSucceeded(s: H2loadSummary, countBased: boolean): void {
  const problems: string[] = [];
  if (s.done === 0 || s.succeeded === 0 || s.status2xx === 0) problems.push('no request completed');
  if (s.failed > 0) problems.push(`${s.failed} failed`);
  if (s.errored > 0) problems.push(`${s.errored} errored`);
  if (s.timeout > 0) problems.push(`${s.timeout} timed out`);
  if (s.status3xx + s.status4xx + s.status5xx > 0) problems.push(`non-2xx: ${s.status3xx} 3xx, ${s.status4xx} 4xx, ${s.status5xx} 5xx`);
  if (countBased && !(s.total === s.done && s.done === s.succeeded && s.succeeded === s.status2xx)) {
    problems.push(`${s.total} total, ${s.done} done, ${s.succeeded} succeeded, ${s.status2xx} 2xx`);
  }
  if (problems.length > 0) throw new Error(`h2load reported ${problems.join(', ')} (${s.command.join(' ')})`);
}

export async function runH2load(o: H2loadOptions): Promise<H2loadSummary> {
  const command = h2loadArgs(o);
  const [bin, ...args] = command;
  if (bin === undefined) throw new Error('empty command');
  // h2load appends to an existing log file
  if (o.logFile !== undefined) await rm(o.logFile, { force: true });
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => { out += c; });
    child.stderr.setEncoding('utf8').on('data', (c: string) => { err += c; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); }, o.timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (c, signal) => {
      clearTimeout(timer);
      if (signal !== null) reject(new Error(`h2load killed by ${signal} (limit ${o.timeoutMs} ms): ${command.join(' ')}\n${out}${err}`));
      else resolve({ code: c, stdout: out, stderr: err });
    });
  });
  if (code !== 0) throw new Error(`h2load exited with ${String(code)}: ${command.join(' ')}\n${stdout}${stderr}`);
  const summary = parseH2load(stdout, command);
  assertAllSucceeded(summary, o.durationSec === undefined);
  return summary;
}

/**
 * A timing script for h2load: `perClientRps` evenly spaced requests per second for `durationSec`,
 * one line per request (offset in ms, tab, URI).
 */
export function timingScript(port: number, perClientRps: number, durationSec: number): string {
  const uri = `http://127.0.0.1:${port}${PROCESS_PATH}`;
  const count = Math.max(1, Math.round(perClientRps * durationSec));
  const lines: string[] = [];
  for (let i = 0; i < count; i++) lines.push(`${((i * 1000) / perClientRps).toFixed(3)}\t${uri}`);
  return `${lines.join('\n')}\n`;
}

/** h2load sends one scripted request per timer tick per connection: ~800/s alone, ~400/s with 10 connections on one core here; stay below. */
export const SCRIPTED_RPS_PER_CLIENT = 300;

export interface LatencyStats {
  samples: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** requests per second over the kept samples' start times */
  achievedRps: number;
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new Error('percentile of no samples');
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

/**
 * Per-request latency from h2load's --log-file (start µs since epoch, HTTP status, µs to end of
 * response). Requests started in the first `skipSec` seconds are left out (connection set-up,
 * JIT warm-up). Throws on any non-2xx or failed (-1) stream.
 */
export function latencyFromLog(text: string, skipSec = 0): LatencyStats {
  const rows: { start: number; us: number }[] = [];
  let lineNo = 0;
  for (const line of text.split('\n')) {
    lineNo++;
    if (line.trim() === '') continue;
    const [start, status, us] = line.split('\t').map(Number);
    if (start === undefined || status === undefined || us === undefined || !Number.isFinite(start) || !Number.isFinite(us)) {
      throw new Error(`h2load log line ${lineNo} unreadable: ${line}`);
    }
    if (status < 200 || status > 299) throw new Error(`h2load log line ${lineNo}: status ${status}`);
    rows.push({ start, us });
  }
  if (rows.length === 0) throw new Error('h2load log is empty');
  // (no Math.min(...rows): a spread of 10^5 arguments overflows the stack)
  const first = rows.reduce((m, r) => Math.min(m, r.start), Number.POSITIVE_INFINITY);
  const kept = rows.filter((r) => r.start >= first + skipSec * 1e6);
  if (kept.length === 0) throw new Error('no samples after warm-up');
  const lat = kept.map((r) => r.us / 1000).sort((a, b) => a - b);
  const lo = kept.reduce((m, r) => Math.min(m, r.start), Number.POSITIVE_INFINITY);
  const hi = kept.reduce((m, r) => Math.max(m, r.start), Number.NEGATIVE_INFINITY);
  const span = (hi - lo) / 1e6;
  return {
    samples: kept.length,
    p50Ms: percentile(lat, 50),
    p90Ms: percentile(lat, 90),
    p99Ms: percentile(lat, 99),
    maxMs: lat[lat.length - 1]!,
    achievedRps: span > 0 ? kept.length / span : Number.NaN,
  };
}

export async function readLatencyLog(path: string, skipSec = 0): Promise<LatencyStats> {
  return latencyFromLog(await readFile(path, 'utf8'), skipSec);
}
