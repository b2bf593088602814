// gatehouse's decision as Envoy dynamic metadata, for Envoy's access log: the same shape over
// ext_proc and ext_authz (8.4 in ../shared/envoy-behaviours.md).
import type { JsonObject } from '@bufbuild/protobuf';
import type { Decision } from '../telemetry/types.js';

/** The namespace of the dynamic metadata gatehouse hands Envoy's access log (8.4). */
export const METADATA_NAMESPACE = 'gatehouse';

/**
 * gatehouse's decision for Envoy's access log (%DYNAMIC_METADATA(gatehouse:reason)%), the same shape
 * over ext_proc and ext_authz. The decision id goes with denials only: an allowed request's decision
 * id is its x-request-id (%REQ(X-REQUEST-ID)%), which keeps allow answers cacheable per route.
 */
export function decisionMetadata(routeId: string, decision: Decision, denial?: { reason: string; decisionId: string }): JsonObject {
  const fields: JsonObject = { route_id: routeId, decision };
  if (denial) {
    fields['reason'] = denial.reason;
    fields['decision_id'] = denial.decisionId;
  }
  return { [METADATA_NAMESPACE]: fields };
}
