// What gatehouse reads off Envoy's ext_proc messages beyond the headers: the peer (CEL attributes,
// 8.6), the route Envoy named, and whether a body message was the whole body (1.7, 1.16).
import type { ProcessingRequest } from '../gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import type { PeerInfo } from '../pipeline/types.js';
import { METADATA_NAMESPACE } from './decision-metadata.js';
import type { BodyDelivery } from './lifecycle.js';
import { certificateFromAttributes, PEER_CERTIFICATE_ATTRIBUTES } from './peer-certificate.js';

/** The key Envoy uses for CEL attributes, whatever the filter instance is named (8.6). */
const ATTRIBUTES_KEY = 'envoy.filters.http.ext_proc';

function attributeString(message: ProcessingRequest, name: string): string | undefined {
  const value = message.attributes[ATTRIBUTES_KEY]?.[name];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

export function peerFrom(message: ProcessingRequest): PeerInfo {
  const sourceAddress = attributeString(message, 'source.address');
  const principal =
    attributeString(message, PEER_CERTIFICATE_ATTRIBUTES.uriSan) ??
    attributeString(message, 'connection.dns_san_peer_certificate') ??
    attributeString(message, PEER_CERTIFICATE_ATTRIBUTES.subject);
  const certificate = certificateFromAttributes((name) => attributeString(message, name));
  return { ...(sourceAddress ? { sourceAddress } : {}), ...(principal ? { principal } : {}), ...(certificate ? { certificate } : {}) };
}

/** The route id Envoy named for this request, from its route name attribute or forwarded metadata. */
export function envoyRouteId(message: ProcessingRequest): string | undefined {
  const fromMetadata = message.metadataContext?.filterMetadata[METADATA_NAMESPACE]?.['route_id'];
  if (typeof fromMetadata === 'string' && fromMetadata.length > 0) return fromMetadata;
  return attributeString(message, 'xds.route_name');
}

/**
 * Was a body message the whole body? Envoy's BUFFERED body ends the message (end_of_stream) unless
 * trailers follow, when it comes with end_of_stream false (1.7, 1.16); a STREAMED or
 * BUFFERED_PARTIAL chunk also comes with end_of_stream false and more may follow. So a body without
 * end_of_stream is whole only when the headers declared exactly its length; and no body is whole
 * when it is shorter than its declared length.
 */
export function bodyDelivery(direction: 'request' | 'response', body: Buffer, endOfStream: boolean, declared: number | undefined): BodyDelivery {
  if (declared !== undefined && body.length < declared) return { kind: 'partial', detail: `${direction} body message of ${body.length} bytes, content-length ${declared}` };
  if (!endOfStream && declared !== body.length) return { kind: 'partial', detail: `${direction} body message of ${body.length} bytes without end_of_stream and no content-length that it completes` };
  return { kind: 'whole', body };
}
