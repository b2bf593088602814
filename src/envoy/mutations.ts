// Envoy's data-plane shapes for headers, and the translation of the chain's header edits into
// mutations Envoy will accept. This file and extproc.ts / extauthz.ts are the only places that know
// protobuf; the filters see HeaderMap and HeaderEdits.
import { create } from '@bufbuild/protobuf';
import type { HeaderMap as EnvoyHeaderMap } from '../gen/envoy/config/core/v3/base_pb.js';
import { HeaderValueOptionSchema, HeaderValueSchema, type HeaderValueOption } from '../gen/envoy/config/core/v3/base_pb.js';
import { HttpStatusSchema, type HttpStatus, type StatusCode } from '../gen/envoy/type/v3/http_status_pb.js';
import { HeaderMutationSchema, type HeaderMutation } from '../gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import { HeaderMap, type HeaderSet } from '../pipeline/headers.js';
import type { Telemetry } from '../telemetry/types.js';

const utf8 = new TextDecoder('utf-8', { fatal: false });
const encoder = new TextEncoder();

/**
 * Envoy puts header values in `raw_value` and leaves `value` empty (envoy-behaviours 1.3); older
 * Envoys and other clients use `value`. Read `raw_value` when it has bytes, else `value`.
 */
export function fromEnvoyHeaders(headers: EnvoyHeaderMap | undefined): HeaderMap {
  const map = new HeaderMap();
  if (!headers) return map;
  for (const h of headers.headers) {
    map.add(h.key, h.rawValue.length > 0 ? utf8.decode(h.rawValue) : h.value);
  }
  return map;
}

// RFC 9110 token, with one optional leading ':' (pseudo-headers): Envoy's headerNameIsValid.
const VALID_NAME = /^:?[!#$%&'*+\-.^_`|~0-9a-z]+$/;
// HTTP/2 field value: no NUL, CR, LF or other controls except HTAB (Envoy's headerValueIsValid).
// Any invalid entry makes Envoy fail the whole answer with a 500 (envoy-behaviours 5.5).
// eslint-disable-next-line no-control-regex
const INVALID_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;

/**
 * Headers Envoy's default mutation rules silently ignore (5.9), or never allow removing (5.10).
 * Sending them would be a no-op at best: gatehouse drops them and says so.
 */
function refusedByEnvoy(name: string, op: 'set' | 'append' | 'remove', direction: 'request' | 'response'): string | undefined {
  if (name === 'host' || name === ':authority' || name === ':method' || name === ':scheme') return 'routing header';
  if (name.startsWith('x-envoy')) return 'x-envoy-* header';
  if (name.startsWith(':')) {
    if (op !== 'set') return 'pseudo-header';
    if (direction === 'request' && name !== ':path') return 'pseudo-header';
    if (direction === 'response' && name !== ':status') return 'pseudo-header';
  }
  return undefined;
}

export interface DroppedEdit {
  readonly name: string;
  readonly why: string;
}

/** Dropped edits are a filter or config mistake: counted and logged, never sent to Envoy. */
export function reportDroppedEdits(telemetry: Telemetry, routeId: string, requestId: string | undefined, dropped: readonly DroppedEdit[]): void {
  if (dropped.length === 0) return;
  telemetry.metrics.error('filter_error', routeId);
  telemetry.logger.warn({ request_id: requestId, route_id: routeId, dropped }, 'header edits Envoy would refuse were dropped');
}

export interface MutationResult {
  readonly mutation: HeaderMutation | undefined;
  readonly dropped: readonly DroppedEdit[];
}

/**
 * The edits Envoy will apply, and the ones it would ignore or fail the answer over (with why).
 * One rule set for both adapters, so a filter's edits mean the same over ext_proc and ext_authz.
 */
export function acceptedEdits(
  edits: { removals: readonly string[]; sets: readonly HeaderSet[] },
  direction: 'request' | 'response',
): { removals: string[]; sets: HeaderSet[]; dropped: DroppedEdit[] } {
  const dropped: DroppedEdit[] = [];
  const removals: string[] = [];
  const sets: HeaderSet[] = [];
  for (const name of edits.removals) {
    const why = !VALID_NAME.test(name) ? 'invalid header name' : refusedByEnvoy(name, 'remove', direction);
    if (why) dropped.push({ name, why });
    else removals.push(name);
  }
  for (const edit of edits.sets) {
    const why = !VALID_NAME.test(edit.name)
      ? 'invalid header name'
      : INVALID_VALUE.test(edit.value)
        ? 'invalid header value'
        : refusedByEnvoy(edit.name, edit.append ? 'append' : 'set', direction);
    if (why) dropped.push({ name: edit.name, why });
    else sets.push(edit);
  }
  return { removals, sets, dropped };
}

/** The chain's edits as an ext_proc HeaderMutation: removals first, then sets (5.1), raw_value (5.2). */
export function toHeaderMutation(
  edits: { removals: readonly string[]; sets: readonly HeaderSet[] },
  direction: 'request' | 'response',
): MutationResult {
  if (edits.removals.length === 0 && edits.sets.length === 0) return { mutation: undefined, dropped: [] };
  const { removals, sets, dropped } = acceptedEdits(edits, direction);
  if (removals.length === 0 && sets.length === 0) return { mutation: undefined, dropped };
  const setHeaders: HeaderValueOption[] = sets.map((edit) =>
    create(HeaderValueOptionSchema, {
      header: create(HeaderValueSchema, { key: edit.name, rawValue: encoder.encode(edit.value) }),
      // ext_proc reads only the deprecated `append` (5.3): false replaces, true adds.
      append: edit.append,
    }),
  );
  return { mutation: create(HeaderMutationSchema, { removeHeaders: removals, setHeaders }), dropped };
}

/** Header entries for an ImmediateResponse (a header map that starts with only :status, 7.4). */
export function immediateResponseHeaders(headers: Readonly<Record<string, string>>): HeaderMutation {
  const setHeaders = Object.entries(headers)
    .filter(([name, value]) => VALID_NAME.test(name) && !INVALID_VALUE.test(value) && !refusedByEnvoy(name, 'set', 'response'))
    .map(([key, value]) => create(HeaderValueOptionSchema, { header: create(HeaderValueSchema, { key, rawValue: encoder.encode(value) }), append: false }));
  return create(HeaderMutationSchema, { setHeaders });
}

/**
 * An Envoy HttpStatus. The generated StatusCode enum names the registered codes only, while Envoy
 * takes any integer it carries, so the number is passed through as is.
 */
export function httpStatus(code: number): HttpStatus {
  // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment
  return create(HttpStatusSchema, { code: code as StatusCode });
}
