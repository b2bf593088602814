// The runtime-neutral facts of the e2ee wire format: media types, field bounds, size limits and
// their checks. No node: imports, so the WebCrypto client (webcrypto-client.ts) shares them with
// the node:crypto implementation (envelope.ts).

export const E2EE_REQUEST_MEDIA_TYPE = 'application/vnd.gatehouse.e2ee-request';
export const E2EE_RESPONSE_MEDIA_TYPE = 'application/vnd.gatehouse.e2ee-response';

export const KEM_DHKEM_X25519_HKDF_SHA256 = 0x0020;
export const KDF_HKDF_SHA256 = 0x0001;
export const AEAD_AES_128_GCM = 0x0001;
export const AEAD_CHACHA20_POLY1305 = 0x0003;

/** Field bounds (bytes). Each is documented in e2ee.md §6. */
export const E2EE_FIELD_LIMITS = {
  deviceKeyId: 64,
  method: 32,
  path: 8192,
  audience: 255,
  contentType: 255,
} as const;

export interface E2eeSizeLimits {
  /** the whole encrypted request body */
  readonly maxRequestBytes: number;
  /** the plaintext response body the gateway will encrypt (and the SDK will accept, plus overhead) */
  readonly maxResponseBytes: number;
}

export const DEFAULT_SIZE_LIMITS: E2eeSizeLimits = { maxRequestBytes: 1024 * 1024, maxResponseBytes: 8 * 1024 * 1024 };

/** What the request line binds: everything the gateway routes on that an attacker could change. */
export interface RequestBinding {
  /** as sent, e.g. "POST" */
  readonly method: string;
  /** the :path pseudo-header as received, query string included */
  readonly path: string;
  /** the API's audience, e.g. the gateway's public authority "api.example.com" */
  readonly audience: string;
}

export const isVisibleAscii = (text: string, allowSpace: boolean): boolean => {
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code > 0x7e || code < (allowSpace ? 0x20 : 0x21)) return false;
  }
  return true;
};

/** Why a field is out of bounds, or undefined. ASCII-only, so characters equal bytes. */
export function boundedField(name: keyof typeof E2EE_FIELD_LIMITS, value: string, allowEmpty: boolean, allowSpace: boolean): string | undefined {
  if (!allowEmpty && value.length === 0) return `${name} is empty`;
  if (value.length > E2EE_FIELD_LIMITS[name]) return `${name} is longer than ${E2EE_FIELD_LIMITS[name]} bytes`;
  if (!isVisibleAscii(value, allowSpace)) return `${name} has bytes outside visible ASCII`;
  return undefined;
}

/** Why a request line cannot be bound, or undefined. */
export const bindingProblem = (binding: RequestBinding): string | undefined =>
  boundedField('method', binding.method, false, false) ?? boundedField('path', binding.path, false, false) ?? boundedField('audience', binding.audience, false, false);

/** Media types compare case-insensitively and parameters are ignored (RFC 9110 §8.3.1). */
export function isMediaType(headerValue: string | undefined, mediaType: string): boolean {
  if (headerValue === undefined) return false;
  if (headerValue === mediaType) return true; // what clients send; the general form below allocates
  const semicolon = headerValue.indexOf(';');
  return (semicolon === -1 ? headerValue : headerValue.slice(0, semicolon)).trim().toLowerCase() === mediaType;
}
