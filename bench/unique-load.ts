// A load generator for streams that must all differ (signed requests: each nonce is claimed once),
// which h2load cannot send: it posts one body again and again. Each pre-framed stream (a gRPC request
// body, as h2load posts it) is sent once over raw node:http2, `inFlight` streams open on each of
// `connections` connections, every answer's grpc-status and answer kinds checked (a refusal is an
// immediate_response: failed). Run as its own process, pinned to the load core:
//   node dist/bench/unique-load.js --port N --file streams.bin [--connections 4] [--in-flight 16]
// streams.bin: each stream as a 4-byte big-endian length and its bytes (writeStreamsFile).
// Prints one JSON line (UniqueLoadResult).
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, constants as h2, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { parseArgs } from 'node:util';
import type { ProcessingResponse } from '../src/gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import { HEADER } from '../src/pipeline/headers.js';
import { decodeRequests, decodeResponses, PROCESS_PATH, unframe } from './extproc-load.js';

export interface UniqueLoadResult {
  readonly streams: number;
  readonly ok: number;
  readonly failed: number;
  /** the first few failures */
  readonly errors: string[];
  /** streams completed per second of wall time, the first fifth of the run left out (warm-up) */
  readonly streamsPerSec: number;
  readonly seconds: number;
  /** the generator's own CPU per stream, µs: it must stay well below the server's */
  readonly clientCpuUsPerStream: number;
  readonly latency: { readonly p50Ms: number; readonly p99Ms: number };
}

export function writeStreamsFile(file: string, streams: readonly Buffer[]): void {
  const parts: Buffer[] = [];
  for (const stream of streams) {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(stream.length);
    parts.push(head, stream);
  }
  writeFileSync(file, Buffer.concat(parts));
}

export function readStreamsFile(file: string): Buffer[] {
  const bytes = readFileSync(file);
  const streams: Buffer[] = [];
  for (let at = 0; at < bytes.length;) {
    if (bytes.length - at < 4) throw new Error(`${file}: truncated length at byte ${at}`);
    const length = bytes.readUInt32BE(at);
    if (bytes.length - at - 4 < length) throw new Error(`${file}: truncated stream at byte ${at}`);
    streams.push(bytes.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return streams;
}

/** Why these answers are not a pass for this stream, or undefined; `byKind`: each answer's kind checked against its message's. */
function answerProblem(stream: Buffer, answers: readonly ProcessingResponse[], byKind: boolean): string | undefined {
  const kinds = answers.map((answer) => answer.response.case ?? '(empty)').join(',');
  if (byKind) {
    const expected = decodeRequests(stream).map((message) => message.request.case ?? '(empty)').join(',');
    return kinds === expected ? undefined : `answers ${kinds}, expected ${expected}${refusalOf(answers)}`;
  }
  const messages = unframe(stream).length;
  if (answers.length !== messages || answers.some((answer) => answer.response.case === 'immediateResponse')) {
    return `answers ${kinds} to ${messages} messages${refusalOf(answers)}`;
  }
  return undefined;
}

/** `: <status> <reason code>` of an immediate response among the answers, for the failure message */
function refusalOf(answers: readonly ProcessingResponse[]): string {
  for (const answer of answers) {
    if (answer.response.case !== 'immediateResponse') continue;
    const immediate = answer.response.value;
    const reason = immediate.headers?.setHeaders.find((option) => option.header?.key === HEADER.reason)?.header;
    const code = reason === undefined ? '' : reason.value !== '' ? reason.value : Buffer.from(reason.rawValue).toString();
    return `: ${immediate.status?.code ?? '?'} ${code}`;
  }
  return '';
}

export interface SentStream {
  /** why the answers are not a pass, or undefined */
  readonly problem: string | undefined;
  /** from the request to the end of the answer */
  readonly ms: number;
  /** performance.now() when it ended */
  readonly endedAt: number;
}

/**
 * Sends one pre-framed stream on `session` and checks its answer: grpc-status 0, one answer per
 * message, none an immediate_response (a refusal); with `byKind` each answer's kind against its
 * message's too (that decodes the request as well). Never rejects: a failure is its `problem`.
 */
export function sendStream(session: ClientHttp2Session, stream: Buffer, byKind: boolean): Promise<SentStream> {
  return new Promise((resolve) => {
    const started = performance.now();
    const request = session.request({ [h2.HTTP2_HEADER_METHOD]: 'POST', [h2.HTTP2_HEADER_PATH]: PROCESS_PATH, 'content-type': 'application/grpc', te: 'trailers' });
    let grpcStatus: unknown;
    const chunks: Buffer[] = [];
    request.on('response', (headers: IncomingHttpHeaders) => { if (headers['grpc-status'] !== undefined) grpcStatus = headers['grpc-status']; });
    request.on('trailers', (trailers: IncomingHttpHeaders) => { grpcStatus = trailers['grpc-status']; });
    request.on('data', (chunk: Buffer) => { chunks.push(chunk); });
    request.on('end', () => {
      const endedAt = performance.now();
      let problem: string | undefined;
      try {
        problem = grpcStatus === '0' ? answerProblem(stream, decodeResponses(Buffer.concat(chunks)), byKind) : `grpc-status ${String(grpcStatus)}`;
      } catch (error) {
        problem = `undecodable answer: ${error instanceof Error ? error.message : String(error)}`;
      }
      resolve({ problem, ms: endedAt - started, endedAt });
    });
    request.on('error', (error: Error) => { const endedAt = performance.now(); resolve({ problem: error.message, ms: endedAt - started, endedAt }); });
    request.end(stream);
  });
}

export async function runUniqueLoad(port: number, streams: readonly Buffer[], connections = 4, inFlight = 16): Promise<UniqueLoadResult> {
  const sessions: ClientHttp2Session[] = [];
  for (let i = 0; i < connections; i++) {
    const session = connect(`http://127.0.0.1:${port}`);
    session.on('error', () => { /* each stream reports its own failure */ });
    sessions.push(session);
  }
  const completedAt = new Float64Array(streams.length);
  const latencies = new Float64Array(streams.length);
  let next = 0;
  let ok = 0;
  let failed = 0;
  const errors: string[] = [];
  const fail = (message: string): void => {
    failed++;
    if (errors.length < 5) errors.push(message);
  };
  const cpuStart = process.cpuUsage();
  const t0 = performance.now();
  const one = async (session: ClientHttp2Session, index: number): Promise<void> => {
    const sent = await sendStream(session, streams[index]!, index % 16 === 0);
    completedAt[index] = sent.endedAt;
    latencies[index] = sent.ms;
    if (sent.problem === undefined) ok++;
    else fail(`stream ${index}: ${sent.problem}`);
  };
  const lane = async (session: ClientHttp2Session): Promise<void> => {
    for (let index = next++; index < streams.length; index = next++) await one(session, index);
  };
  await Promise.all(sessions.flatMap((session) => Array.from({ length: inFlight }, () => lane(session))));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  for (const session of sessions) session.close();

  // the rate after the first fifth of the run: connections warmed up, the server's JIT too
  const warm = t0 + (seconds * 1000) / 5;
  const after = Array.from(completedAt).filter((t) => t > warm);
  const span = (Math.max(...after) - warm) / 1000;
  const sorted = Array.from(latencies).sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return {
    streams: streams.length, ok, failed, errors,
    streamsPerSec: span > 0 ? after.length / span : Number.NaN,
    seconds,
    clientCpuUsPerStream: (cpu.user + cpu.system) / streams.length,
    latency: { p50Ms: at(0.5), p99Ms: at(0.99) },
  };
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '')) {
  const { values } = parseArgs({ options: { port: { type: 'string' }, file: { type: 'string' }, connections: { type: 'string', default: '4' }, 'in-flight': { type: 'string', default: '16' } } });
  if (values.port === undefined || values.file === undefined) throw new Error('usage: unique-load.js --port N --file streams.bin [--connections C] [--in-flight K]');
  const result = await runUniqueLoad(Number(values.port), readStreamsFile(values.file), Number(values.connections), Number(values['in-flight']));
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
