// The one table of e2ee failure codes: code → HTTP status → meaning. The future deny-reason table
// imports E2EE_FAILURES; docs/protocol/e2ee.md prints it (codes.test.ts keeps the two equal).
// Codes carry an "e2ee_" prefix so they stay unique beside the signing and passport tables.

export const E2EE_FAILURES = {
  // Gateway side, in the order decryptRequest checks.
  e2ee_content_type_invalid: { status: 415, meaning: 'The request Content-Type is not application/vnd.gatehouse.e2ee-request.' },
  e2ee_too_large: { status: 413, meaning: 'The encrypted request body is larger than the configured limit (default 1 MiB).' },
  e2ee_envelope_malformed: {
    status: 400,
    meaning: 'The envelope is truncated or malformed: shorter than its header, a device key id of length 0, over 64 bytes or outside visible ASCII, or a ciphertext shorter than the AEAD tag plus the framing byte.',
  },
  e2ee_unknown_key_id: { status: 400, meaning: 'No gateway key has this key id (rotated out or never published); fetch the key configuration again.' },
  e2ee_suite_unsupported: { status: 400, meaning: 'The KEM, KDF or AEAD in the envelope is not one this key id offers.' },
  e2ee_binding_invalid: {
    status: 400,
    meaning: 'The request line cannot be bound: method, path or audience is empty, too long, or has bytes outside visible ASCII.',
  },
  e2ee_unknown_device: { status: 401, meaning: 'No enrolled X25519 key for the device key id in the envelope.' },
  e2ee_decrypt_failed: {
    status: 400,
    meaning: 'The ciphertext does not open: tampered bytes, a body sent to another method/path/audience, a wrong device key (authentication failed), a wrong gateway key, or a small-order enc.',
  },
  e2ee_inner_malformed: { status: 400, meaning: 'The ciphertext opened but its plaintext framing is invalid (content-type length past the end, or a content type outside visible ASCII).' },
  // Gateway side, on the response.
  e2ee_upstream_too_large: { status: 502, meaning: 'The upstream response is larger than the configured limit for encryption (default 8 MiB).' },
  e2ee_upstream_content_type_invalid: { status: 502, meaning: 'The upstream Content-Type cannot be carried: over 255 bytes or outside visible ASCII and space.' },
  // A bug, never an answer to input: the property tests assert no input reaches it.
  e2ee_internal_error: { status: 500, meaning: 'An unexpected exception inside the e2ee library.' },
} as const satisfies Record<string, { status: 400 | 401 | 413 | 415 | 500 | 502; meaning: string }>;

export type E2eeFailureCode = keyof typeof E2EE_FAILURES;

export const E2EE_FAILURE_CODES = Object.keys(E2EE_FAILURES) as readonly E2eeFailureCode[];

export interface E2eeFailure {
  readonly ok: false;
  readonly code: E2eeFailureCode;
  /** For logs only, never for the client: the code is the contract. */
  readonly detail: string;
}

export function e2eeFailure(code: E2eeFailureCode, detail: string): E2eeFailure {
  return { ok: false, code, detail };
}

export function e2eeHttpStatus(code: E2eeFailureCode): (typeof E2EE_FAILURES)[E2eeFailureCode]['status'] {
  return E2EE_FAILURES[code].status;
}

// App side (the SDK): failures the client meets before sending or on the response. They never
// travel as HTTP statuses, so they carry no status.
export const E2EE_CLIENT_FAILURES = {
  e2ee_key_config_malformed: 'The key configuration (application/ohttp-keys) is truncated or malformed.',
  e2ee_no_usable_key: 'No key configuration offers DHKEM(X25519, HKDF-SHA256) with HKDF-SHA256 and an AEAD this client supports.',
  e2ee_request_invalid: 'The request cannot be sealed: device key id, method, path, audience or content type out of range, or the body over the limit.',
  e2ee_response_content_type_invalid: 'The response Content-Type is not application/vnd.gatehouse.e2ee-response.',
  e2ee_response_too_large: 'The encrypted response is larger than the client limit.',
  e2ee_response_malformed: 'The encrypted response is shorter than its response nonce plus the AEAD tag, or its plaintext framing is invalid.',
  e2ee_response_decrypt_failed: 'The response does not open with the key derived from this request: tampered, or the answer to another request.',
} as const satisfies Record<string, string>;

export type E2eeClientFailureCode = keyof typeof E2EE_CLIENT_FAILURES;

export interface E2eeClientFailure {
  readonly ok: false;
  readonly code: E2eeClientFailureCode;
  readonly detail: string;
}

export function e2eeClientFailure(code: E2eeClientFailureCode, detail: string): E2eeClientFailure {
  return { ok: false, code, detail };
}
