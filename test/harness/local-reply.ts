// Envoy local replies: Utility::prepareLocalReply (source/common/http/utility.cc) plus the
// HCM's final response-header touches. Catalogue 7.3–7.6, 11.17–11.21, 1.8.
import { HeaderMap } from './headers.js';

/** Grpc::Utility::httpToGrpcStatus (source/common/grpc/status.cc). Catalogue 7.6. */
export function httpToGrpcStatus(http: number): number {
  switch (http) {
    case 400:
      return 13; // INTERNAL
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return 7; // PERMISSION_DENIED
    case 404:
      return 12; // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return 14; // UNAVAILABLE
    default:
      return 2; // UNKNOWN
  }
}

/** Envoy's PercentEncoding::encode for grpc-message: '%', and bytes outside 0x20–0x7e. */
export function percentEncodeGrpcMessage(bytes: string): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) out += `%${c.toString(16).toUpperCase().padStart(2, '0')}`;
    else out += bytes[i]!;
  }
  return out;
}

export interface LocalReplyInput {
  status: number;
  body: Buffer;
  details: string;
  isGrpc: boolean;
  isHeadRequest: boolean;
  grpcStatus?: number | undefined;
  /** Applied to a map holding only :status, before the body rules (e.g. ImmediateResponse.headers). */
  modifyHeaders?: ((h: HeaderMap) => void) | undefined;
}

export interface LocalReply {
  headers: HeaderMap; // includes :status
  body: Buffer;
  details: string;
}

export function prepareLocalReply(input: LocalReplyInput): LocalReply {
  const headers = new HeaderMap('response', [[':status', String(input.status)]]);
  input.modifyHeaders?.(headers);
  const bodyBytes = input.body.toString('latin1');
  if (input.isGrpc) {
    // 7.6: gRPC downstream → HTTP 200, trailers-only, grpc-status / grpc-message.
    headers.set(':status', '200');
    headers.set('content-type', 'application/grpc');
    if (headers.get('grpc-status') === undefined) {
      headers.set('grpc-status', String(input.grpcStatus ?? httpToGrpcStatus(input.status)));
    }
    if (bodyBytes.length > 0 && !input.isHeadRequest) {
      headers.set('grpc-message', percentEncodeGrpcMessage(bodyBytes));
    }
    headers.remove('content-length');
    return { headers, body: Buffer.alloc(0), details: input.details };
  }
  if (bodyBytes.length > 0) {
    headers.set('content-length', String(bodyBytes.length));
    const ct = headers.get('content-type');
    if (ct === undefined || ct.length === 0 || ct.startsWith('application/grpc')) headers.set('content-type', 'text/plain');
  } else {
    // 7.4: empty body removes content-length and content-type.
    headers.remove('content-length');
    headers.remove('content-type');
  }
  return { headers, body: input.isHeadRequest ? Buffer.alloc(0) : input.body, details: input.details };
}

/** Is the downstream request a gRPC request (Grpc::Common::isGrpcRequestHeaders)? */
export function isGrpcRequest(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  return contentType === 'application/grpc' || contentType.startsWith('application/grpc+') || contentType.startsWith('application/grpc;');
}
