// What gatehouse sends Envoy over ext_proc, and how it is encoded: the answers that are a function of
// the route (the processing mode it asks for, a headers answer with the same edits) are built and
// encoded once; the rest per message. The service definition carries the encoder that reuses those
// bytes and a deserializer that never throws. Section numbers: ../shared/envoy-behaviours.md.
import { create, type JsonObject } from '@bufbuild/protobuf';
import type * as grpc from '@grpc/grpc-js';
import {
  ProcessingMode_BodySendMode,
  ProcessingMode_HeaderSendMode,
  ProcessingModeSchema,
  type ProcessingMode,
} from '../gen/envoy/extensions/filters/http/ext_proc/v3/processing_mode_pb.js';
import {
  BodyMutationSchema,
  BodyResponseSchema,
  CommonResponseSchema,
  HeadersResponseSchema,
  ImmediateResponseSchema,
  ProcessingRequestSchema,
  ProcessingResponseSchema,
  TrailersResponseSchema,
  type ProcessingResponse,
} from '../gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import type { HeaderSet } from '../pipeline/headers.js';
import type { CompiledRoute } from '../pipeline/types.js';
import { decisionMetadata } from './decision-metadata.js';
import { extProcService, lenientDeserializer } from './grpc-services.js';
import type { Answer } from './lifecycle.js';
import { httpStatus, immediateResponseHeaders, toHeaderMutation, type DroppedEdit } from './mutations.js';

// Messages that failed to decode are handed to the stream as an empty marker, so the stream can end
// with a precise INVALID_ARGUMENT instead of grpc-js's generic INTERNAL.
export const processingRequests = lenientDeserializer(ProcessingRequestSchema);

/**
 * Answers built once and reused (see `headersAnswer`) are encoded once: their bytes are kept here.
 * Only messages that are never changed after construction may be registered.
 */
const encodedOnce = new WeakMap<ProcessingResponse, Buffer | null>();

/** The Process method with a deserializer that never throws (see `undecodable`). */
export const extProcServiceDefinition: grpc.ServiceDefinition = {
  process: {
    ...extProcService.process,
    responseSerialize: (message: ProcessingResponse): Buffer => {
      const cached = encodedOnce.get(message);
      if (cached) return cached;
      const bytes = extProcService.process.responseSerialize(message);
      if (cached === null) encodedOnce.set(message, bytes);
      return bytes;
    },
    requestDeserialize: processingRequests.deserialize,
  },
};

/** The processing mode gatehouse asks for after request headers, from the route's needs (2.4). */
const modeOverrides = new WeakMap<CompiledRoute, ProcessingMode>();
function modeOverrideFor(route: CompiledRoute): ProcessingMode {
  const cached = modeOverrides.get(route);
  if (cached) return cached;
  // Body modes are always replaced by an override, so they are set explicitly. Response headers are
  // always asked for: the access log and metrics need the status.
  const mode = create(ProcessingModeSchema, {
    requestHeaderMode: ProcessingMode_HeaderSendMode.DEFAULT,
    responseHeaderMode: ProcessingMode_HeaderSendMode.SEND,
    requestBodyMode: route.needs.requestBody ? ProcessingMode_BodySendMode.BUFFERED : ProcessingMode_BodySendMode.NONE,
    responseBodyMode: route.needs.responseBody ? ProcessingMode_BodySendMode.BUFFERED : ProcessingMode_BodySendMode.NONE,
    requestTrailerMode: ProcessingMode_HeaderSendMode.SKIP,
    responseTrailerMode: ProcessingMode_HeaderSendMode.SKIP,
  });
  modeOverrides.set(route, mode);
  return mode;
}

/**
 * A headers answer is a function of the route, the phase and the header edits: a route whose filters
 * make the same edits every time (the usual case: static header rules) gets the same message, built
 * and encoded once. Bounded per route so edits that vary per request (ids, tokens) cannot grow it.
 */
const ANSWERS_PER_ROUTE = 64;
export interface HeadersAnswer {
  readonly response: ProcessingResponse;
  readonly dropped: readonly DroppedEdit[];
}
const headersAnswers = new WeakMap<CompiledRoute, Map<string, HeadersAnswer>>();

function editsKey(phase: string, edits: { removals: readonly string[]; sets: readonly HeaderSet[] }): string {
  let key = phase;
  for (const name of edits.removals) key += `\u0000-${name}`;
  for (const set of edits.sets) key += `\u0000${set.append ? '+' : '='}${set.name}\u0001${set.value}`;
  return key;
}

export function headersAnswer(
  route: CompiledRoute,
  phase: 'requestHeaders' | 'responseHeaders',
  edits: { removals: string[]; sets: HeaderSet[] },
): HeadersAnswer {
  let cache = headersAnswers.get(route);
  if (!cache) {
    cache = new Map();
    headersAnswers.set(route, cache);
  }
  const key = editsKey(phase, edits);
  const hit = cache.get(key);
  if (hit) return hit;
  const { mutation, dropped } = toHeaderMutation(edits, phase === 'requestHeaders' ? 'request' : 'response');
  const common = create(CommonResponseSchema, mutation ? { headerMutation: mutation } : {});
  const response = create(ProcessingResponseSchema, {
    response: { case: phase, value: create(HeadersResponseSchema, { response: common }) },
  });
  if (phase === 'requestHeaders') {
    // Ask for exactly what the route's filters need (2.4); honoured where allow_mode_override is on.
    response.modeOverride = modeOverrideFor(route);
    response.dynamicMetadata = decisionMetadata(route.id, 'allow');
  }
  const answer = { response, dropped };
  if (cache.size < ANSWERS_PER_ROUTE) {
    cache.set(key, answer);
    encodedOnce.set(response, null);
  }
  return answer;
}

/** The answer to a body message: the header edits drained for it, and the body when a filter replaced it. */
export function bodyAnswer(phase: 'requestBody' | 'responseBody', edits: { removals: string[]; sets: HeaderSet[] }, replacement: Buffer | undefined): HeadersAnswer {
  const { mutation, dropped } = toHeaderMutation(edits, phase === 'requestBody' ? 'request' : 'response');
  const common = create(CommonResponseSchema, {
    ...(mutation ? { headerMutation: mutation } : {}),
    ...(replacement ? { bodyMutation: create(BodyMutationSchema, { mutation: { case: 'body', value: replacement } }) } : {}),
  });
  return { response: create(ProcessingResponseSchema, { response: { case: phase, value: create(BodyResponseSchema, { response: common }) } }), dropped };
}

/** A cached answer with other metadata (a shadowed denial tells Envoy's access log; the cached answer says allow). */
export function withMetadata(response: ProcessingResponse, metadata: JsonObject): ProcessingResponse {
  return create(ProcessingResponseSchema, { ...response, dynamicMetadata: metadata });
}

/** A trailers message passed on unchanged. */
export function trailersAnswer(phase: 'requestTrailers' | 'responseTrailers'): ProcessingResponse {
  return create(ProcessingResponseSchema, { response: { case: phase, value: create(TrailersResponseSchema) } });
}

/** The lifecycle's denial or own answer as Envoy's local reply (7.2), with the decision for its log. */
export function immediateAnswer(answer: Extract<Answer, { kind: 'immediate' }>, metadata: JsonObject): ProcessingResponse {
  return create(ProcessingResponseSchema, {
    response: {
      case: 'immediateResponse',
      value: create(ImmediateResponseSchema, {
        status: httpStatus(answer.status),
        headers: immediateResponseHeaders(answer.headers),
        body: answer.body,
        details: answer.details,
      }),
    },
    dynamicMetadata: metadata,
  });
}
