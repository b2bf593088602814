// What the protocol fuzz tests (test/faults/fuzz-*.test.ts) share: a config with a protected and an
// open route, generators for hostile bytes, the check that a denial is one of the documented ones,
// and a test-local watch for unhandled rejections and uncaught exceptions.
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { fromBinary } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { ProcessingResponseSchema, type ProcessingResponse } from '../../src/gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import { DENY_REASONS, type DenyReasonCode } from '../../src/pipeline/deny.js';
import type { World } from '../../src/protocol/signing/test-support.js';
import { signedFilterConfig } from './signed-config.js';

export const AUTHORITY = 'api.example.com';
/** the one request whose real signature the fuzzers mix into others (never sent as signed) */
export const SIGNED_PATH = '/pay/signed';
/** the body limit of the protected route: small, so oversized bodies are cheap to make */
export const PAY_MAX_BODY_BYTES = 4096;

/**
 * Routes: `pay` (prefix /pay/, signed, every method) and `open` (prefix /open/, headers only);
 * anything else is refused. `open` lets the fuzzer reach the allow paths, so the property is not
 * vacuous.
 */
export async function fuzzRoutes(world: World): Promise<string> {
  return `
unmatched: deny
routes:
  - id: pay
    match: { path: { prefix: /pay/ } }
    maxBodyBytes: ${PAY_MAX_BODY_BYTES}
    filters:
      - signed: ${await signedFilterConfig(world)}
  - id: open
    match: { path: { prefix: /open/ } }
    filters:
      - headers: { request: { set: { x-gateway: gatehouse } } }
`;
}

/**
 * A path that is literally on the protected route (no dot segments, escapes or case games that the
 * route table might canonicalise elsewhere): whatever else the message says, no allow for it.
 */
export const LITERALLY_PROTECTED = /^\/pay\/[a-z]+(\?[a-z0-9=&]*)?$/;

export const PATHS = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('/pay/transfer', '/pay/x?amount=1', '/pay/transfers', '/open/x', '/open/', '/elsewhere', '/') },
  { weight: 1, arbitrary: fc.constantFrom('/pay/../open/x', '/open/../pay/x', '//pay/x', '/PAY/x', '/pay/%2e%2e/open', '/open/%2fpay', '/pay', 'pay/x', '*', '') },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
);

export const METHODS = fc.oneof({ weight: 6, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'CONNECT', 'get') }, { weight: 1, arbitrary: fc.string({ maxLength: 10 }) });

/** Bytes that are not UTF-8 (lone continuation, overlong, surrogate, truncated sequence). */
export const INVALID_UTF8 = fc.constantFrom(
  Uint8Array.of(0x80),
  Uint8Array.of(0xc0, 0xaf),
  Uint8Array.of(0xed, 0xa0, 0x80),
  Uint8Array.of(0xf0, 0x9f, 0x98),
  Uint8Array.of(0x2f, 0x70, 0x61, 0x79, 0x2f, 0xff, 0xfe),
);

const HUGE = new Uint8Array(100_000).fill(0x61);

/** Header value bytes: short random, not UTF-8, control characters, or huge. */
export const VALUE_BYTES = fc.oneof(
  { weight: 6, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  { weight: 2, arbitrary: INVALID_UTF8 },
  { weight: 1, arbitrary: fc.constantFrom(Uint8Array.of(0), Uint8Array.of(0x0d, 0x0a), Uint8Array.of(0x7f)) },
  { weight: 1, arbitrary: fc.constant(HUGE) },
);

/**
 * An extra header's value: mostly text a client could send (so the request reaches the filters
 * behind sanitize), else any bytes.
 */
export const EXTRA_VALUE_BYTES = fc.oneof({ weight: 2, arbitrary: fc.string({ maxLength: 40 }).map((s) => new TextEncoder().encode(s)) }, { weight: 1, arbitrary: VALUE_BYTES });

export const HEADER_NAMES = fc.oneof(
  fc.constantFrom(':method', ':path', ':authority', ':scheme', ':status', 'host', 'content-length', 'content-type', 'transfer-encoding', 'signature', 'signature-input', 'device-credential', 'content-digest', 'x-passport', 'x-gatehouse-client', 'x-forwarded-client-cert', 'x-request-id', 'traceparent'),
  fc.string({ maxLength: 20 }),
  fc.uint8Array({ maxLength: 12 }).map((b) => Buffer.from(b).toString('latin1')),
);

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** What a denial looks like when it is one of the documented ones: the reason, or why it is not. */
export function documentedDenial(status: number, reason: string | undefined): { ok: true; reason: DenyReasonCode } | { ok: false; why: string } {
  if (reason === undefined) return { ok: false, why: `status ${status} without x-gatehouse-reason` };
  if (!(reason in DENY_REASONS)) return { ok: false, why: `reason ${reason} is not in DENY_REASONS` };
  const code = reason as DenyReasonCode;
  if (DENY_REASONS[code].status !== status) return { ok: false, why: `${reason} answered ${status}, documented ${DENY_REASONS[code].status}` };
  // a filter that threw: input should never reach an exception, it has a precise answer
  if (code === 'internal_error' || code === 'e2ee_internal_error') return { ok: false, why: `${reason}: an exception inside gatehouse` };
  return { ok: true, reason: code };
}

/** Envoy's reading of a header entry: raw_value when it has bytes, else value (envoy-behaviours 1.3). */
export function headerText(entry: { value: string; rawValue: Uint8Array }): string {
  return entry.rawValue.length > 0 ? utf8.decode(entry.rawValue) : entry.value;
}

export class Tally {
  private readonly counts = new Map<string, number>();
  add(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }
  get(key: string): number {
    return this.counts.get(key) ?? 0;
  }
  get total(): number {
    let sum = 0;
    for (const n of this.counts.values()) sum += n;
    return sum;
  }
  toString(): string {
    return [...this.counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');
  }
}

/**
 * Records unhandled rejections and uncaught exceptions while the test runs (gatehouse runs in this
 * process), and asserts none at the end. Test-local: the listeners go with the test.
 */
export function watchProcessFaults(t: { after: (fn: () => unknown) => void }): { assertNone: () => void } {
  const faults: string[] = [];
  const onRejection = (reason: unknown): void => {
    faults.push(`unhandledRejection: ${reason instanceof Error ? reason.stack ?? reason.message : String(reason)}`);
  };
  const onException = (error: Error): void => {
    faults.push(`uncaughtException: ${error.stack ?? error.message}`);
  };
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtExceptionMonitor', onException);
  t.after(() => {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtExceptionMonitor', onException);
  });
  return {
    assertNone: () => {
      assert.deepEqual(faults, [], 'no unhandled rejection or uncaught exception');
    },
  };
}

/** fast-check's settings for these tests: a fixed number of runs, the seed printed on failure. */
export function fuzzParameters(numRuns: number): fc.Parameters<unknown> {
  // fast-check prints the seed and path of a failure; FUZZ_SEED=<seed> replays it
  const seed = process.env['FUZZ_SEED'];
  return { numRuns, verbose: fc.VerbosityLevel.Verbose, includeErrorInReport: true, ...(seed === undefined ? {} : { seed: Number(seed) }) };
}

/** how long a raw ext_proc stream may take to end after its half-close: generous, a hang is minutes */
export const STREAM_BOUND_MS = 30_000;
const PROCESS_PATH = '/envoy.service.ext_proc.v3.ExternalProcessor/Process';

export interface ExtProcStreamResult {
  readonly answers: ProcessingResponse[];
  readonly end: grpc.StatusObject | 'no end';
}

/** Sends the frames as they are, half-closes as Envoy does, and waits (bounded) for the stream's end. */
export async function runExtProcStream(client: grpc.Client, frames: readonly Buffer[]): Promise<ExtProcStreamResult> {
  const call = client.makeBidiStreamRequest(PROCESS_PATH, (b: Buffer) => b, (b: Buffer) => b);
  const answers: ProcessingResponse[] = [];
  call.on('data', (bytes: Buffer) => answers.push(fromBinary(ProcessingResponseSchema, bytes)));
  call.on('error', () => undefined);
  const ended = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  for (const frame of frames) call.write(frame);
  call.end();
  let timer: NodeJS.Timeout | undefined;
  const end = await Promise.race([ended, new Promise<'no end'>((resolve) => { timer = setTimeout(() => { resolve('no end'); }, STREAM_BOUND_MS); })]);
  clearTimeout(timer);
  if (end === 'no end') call.cancel();
  return { answers, end };
}
