// Small helpers shared by the stand-in self-tests.
import { ProcessingModeSchema } from '../../src/gen/envoy/extensions/filters/http/ext_proc/v3/processing_mode_pb.js';
import { ExtProcStandIn, type ExtProcStandInOptions } from './ext-proc.js';
import { startFakeProcessor, type FakeProcessor, type StreamScript } from './fake-processor.js';
import type { Upstream } from './upstream.js';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { durationFromMs } from '@bufbuild/protobuf/wkt';
import { HeaderValueOptionSchema, HeaderValueSchema } from '../../src/gen/envoy/config/core/v3/base_pb.js';
import { ExternalProcessorSchema } from '../../src/gen/envoy/extensions/filters/http/ext_proc/v3/ext_proc_pb.js';
import { GrpcServiceSchema } from '../../src/gen/envoy/config/core/v3/grpc_service_pb.js';
import { HeaderMutationSchema, type ProcessingRequest } from '../../src/gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import type { HttpHeaders } from '../../src/gen/envoy/service/ext_proc/v3/external_processor_pb.js';

/**
 * Envoy's message timeout in harness tests unless a test sets its own: Envoy's 200 ms default is a
 * production goal, and a processor on a busy machine may answer later (a test's verdict must not
 * depend on how busy the machine is). Tests of the timeout itself set messageTimeout.
 */
export const HARNESS_MESSAGE_TIMEOUT_MS = 30_000;

export function extProcConfig(init: MessageInitShape<typeof ExternalProcessorSchema> = {}): ReturnType<typeof create<typeof ExternalProcessorSchema>> {
  return create(ExternalProcessorSchema, {
    grpcService: create(GrpcServiceSchema, { targetSpecifier: { case: 'envoyGrpc', value: { clusterName: 'ext_proc_cluster' } } }),
    messageTimeout: durationFromMs(HARNESS_MESSAGE_TIMEOUT_MS),
    ...init,
  });
}

/** A set_headers entry carrying the value in raw_value (what Envoy reads). */
export function setRaw(key: string, value: string, append?: boolean): ReturnType<typeof create<typeof HeaderValueOptionSchema>> {
  return create(HeaderValueOptionSchema, {
    header: create(HeaderValueSchema, { key, rawValue: Buffer.from(value, 'latin1') }),
    ...(append === undefined ? {} : { append }),
  });
}

/** A set_headers entry carrying the value only in `value` (which Envoy ignores, 5.2). */
export function setValueOnly(key: string, value: string): ReturnType<typeof create<typeof HeaderValueOptionSchema>> {
  return create(HeaderValueOptionSchema, { header: create(HeaderValueSchema, { key, value }) });
}

export function mutation(set: ReturnType<typeof setRaw>[], remove: string[] = []): ReturnType<typeof create<typeof HeaderMutationSchema>> {
  return create(HeaderMutationSchema, { setHeaders: set, removeHeaders: remove });
}

export function headersOf(m: ProcessingRequest | undefined): HttpHeaders {
  const r = m?.request;
  if (r?.case === 'requestHeaders' || r?.case === 'responseHeaders') return r.value;
  throw new Error(`not a headers message: ${r?.case ?? 'none'}`);
}

export function bodyOf(m: ProcessingRequest | undefined): { body: string; eos: boolean } {
  const r = m?.request;
  if (r?.case === 'requestBody' || r?.case === 'responseBody') return { body: Buffer.from(r.value.body).toString('latin1'), eos: r.value.endOfStream };
  throw new Error(`not a body message: ${r?.case ?? 'none'}`);
}

/** Header pairs of an Envoy headers message: [key, raw_value] (and whether any `value` was set). */
export function protoPairs(h: HttpHeaders): [string, string][] {
  return (h.headers?.headers ?? []).map((x) => [x.key, Buffer.from(x.rawValue).toString('latin1')]);
}

export function kinds(msgs: ProcessingRequest[]): string[] {
  return msgs.map((m) => m.request.case ?? 'none');
}

export function get(pairs: [string, string][], name: string): string | undefined {
  return pairs.find(([n]) => n === name)?.[1];
}
export function getAll(pairs: [string, string][], name: string): string[] {
  return pairs.filter(([n]) => n === name).map(([, v]) => v);
}

/** Waits for `p`, but never longer than `ms` (bounded waits: a missing event fails the test, not hangs it). */
export async function within(p: Promise<unknown> | undefined, ms = 2000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((resolve) => { timer = setTimeout(resolve, ms); })]);
  if (timer !== undefined) clearTimeout(timer);
}

/** A fake processor running `script`, a stand-in pointed at it and at `upstream`; both closed after `fn`. */
export async function withStandIn(
  upstream: Upstream,
  script: StreamScript,
  opts: Omit<ExtProcStandInOptions, 'processorAddress' | 'upstream'>,
  fn: (s: ExtProcStandIn, p: FakeProcessor) => Promise<void>,
): Promise<void> {
  const p = await startFakeProcessor(script);
  const s = new ExtProcStandIn({ processorAddress: p.address, upstream, ...opts });
  try {
    await fn(s, p);
  } finally {
    s.close();
    await p.close();
  }
}

export const mode = (init: Parameters<typeof create<typeof ProcessingModeSchema>>[1]): ReturnType<typeof create<typeof ProcessingModeSchema>> => create(ProcessingModeSchema, init);
