// Security events: a suspicious denial (SUSPICIOUS_REASONS in src/pipeline/deny.ts decides which) as
// one structured record for fraud detection. The adapters call `securityEventOf` at every denial;
// filters only contribute who the request named (`recordClaimant`), and how sure that is:
//  - verified: the account's key made this request and this is its first arrival: signature by the
//    key the credential binds, body matching its Content-Digest, nonce never seen (a revoked device,
//    a disabled account), or the signed filter handed such an identity on (e2ee's checks). The only
//    trust a disable rule counts (src/security/rules.ts);
//  - credential: the credential verified (issuer signature) but the request as a whole did not (bad
//    signature, stale, wrong key, a replay, a body that does not match the signed digest — changed in
//    transit or cut by Envoy's limits), or a bearer login token authenticated it: whoever sent it
//    holds something anyone who saw one request can hold. Reported, never counted;
//  - claimed: read from something nothing verified (a credential that does not verify, the device key
//    id of an e2ee envelope that did not open). Reported, never counted by a disable rule: anyone can
//    write anyone's name.
import { denyReason, suspicionOf, type DenyReasonCode, type SuspicionCategory } from '../pipeline/deny.js';
import { STATE, type IdentityTrust } from '../pipeline/state.js';
import type { RequestContext } from '../pipeline/types.js';

// filters write the claimant through pipeline/state.ts (they never import security/)
export { recordClaimant, type Claimant } from '../pipeline/state.js';
export type { IdentityTrust };

/** ctx.state key of the identity a filter saw in a request it refused */
export const SECURITY_CLAIMANT_STATE = STATE.claimant;

/** the most a client-supplied identifier may be in an event (longer ones are cut and marked) */
const MAX_ID_LENGTH = 256;
const MAX_DETAIL_LENGTH = 512;

function bounded(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

/** One suspicious denial. Field names are those of the Redis Stream entry and the log line. */
export interface SecurityEvent {
  /** the deny code */
  readonly code: DenyReasonCode;
  readonly category: SuspicionCategory;
  /** the HTTP status the client got */
  readonly status: number;
  readonly route: string;
  readonly method: string;
  /** Envoy's x-request-id (log correlation) */
  readonly requestId: string;
  /** gatehouse's own decision id, as the client saw it in x-gatehouse-decision-id */
  readonly decisionId?: string;
  /** the W3C trace id of the request, as its access line has it (`trace_id`) */
  readonly traceId?: string;
  readonly subject?: string;
  readonly device?: string;
  /** how sure the subject and device are; `none` when the request named nobody gatehouse could read */
  readonly trust: IdentityTrust | 'none';
  /** the downstream address Envoy reported */
  readonly clientAddress?: string;
  /** Unix ms */
  readonly at: number;
  /** why, for analysts (the access line's detail) */
  readonly detail?: string;
}

/** The event for a denial, or undefined when its code is not suspicious. Never throws. */
export function securityEventOf(ctx: RequestContext, code: DenyReasonCode, detail: string | undefined, now: number, traceId?: string): SecurityEvent | undefined {
  const category = suspicionOf(code);
  if (category === undefined) return undefined;
  const claimant = ctx.state.get(SECURITY_CLAIMANT_STATE);
  return {
    code,
    category,
    status: denyReason(code).status,
    route: ctx.routeId,
    method: ctx.method,
    requestId: ctx.requestId,
    decisionId: ctx.decisionId,
    // a trace id is 32 lowercase hex characters (the tracer made it or parsed it strictly): no bound needed
    ...(traceId === undefined ? {} : { traceId }),
    ...(claimant?.subject === undefined ? {} : { subject: bounded(claimant.subject, MAX_ID_LENGTH) }),
    ...(claimant?.device === undefined ? {} : { device: bounded(claimant.device, MAX_ID_LENGTH) }),
    trust: claimant === undefined || (claimant.subject === undefined && claimant.device === undefined) ? 'none' : claimant.trust,
    ...(ctx.peer.sourceAddress === undefined ? {} : { clientAddress: ctx.peer.sourceAddress }),
    at: now,
    ...(detail === undefined ? {} : { detail: bounded(detail, MAX_DETAIL_LENGTH) }),
  };
}

/** format version of the stream entries and log lines; bumped when a field changes meaning */
export const SECURITY_EVENT_VERSION = '1';

/**
 * The event as flat string fields: the Redis Stream entry (XADD field value ...) and, with `msg`,
 * the log line. Absent values are left out, never empty strings.
 */
export function eventFields(event: SecurityEvent, instance: string): Record<string, string> {
  const fields: Record<string, string> = {
    v: SECURITY_EVENT_VERSION,
    code: event.code,
    category: event.category,
    status: String(event.status),
    route: event.route,
    method: event.method,
    request_id: event.requestId,
    decision_id: event.decisionId ?? event.requestId,
    trust: event.trust,
    time: new Date(event.at).toISOString(),
    instance,
  };
  if (event.traceId !== undefined) fields['trace_id'] = event.traceId;
  if (event.subject !== undefined) fields['subject'] = event.subject;
  if (event.device !== undefined) fields['device'] = event.device;
  if (event.clientAddress !== undefined) fields['client_address'] = event.clientAddress;
  if (event.detail !== undefined) fields['detail'] = event.detail;
  return fields;
}
