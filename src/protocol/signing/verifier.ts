// Per-request verification of the gatehouse RFC 9421 profile. Synchronous and I/O-free: the verdict
// carries the identity, key id and nonce, and the caller's replay store decides whether the nonce is new.
import { utf8 } from '../common/base64.js';
import { parseDictionary, type BareItem, type InnerList } from '../common/sfv.js';
import { fail, type SigningFailure } from './codes.js';
import { checkContentDigest } from './content-digest.js';
import { type CredentialCache, type CredentialTrust } from './credential.js';
import { verifyRaw } from './keys.js';
import {
  CREDENTIAL_HEADER,
  DEFAULT_FRESHNESS,
  DERIVED_COMPONENTS,
  NONCE_PATTERN,
  CONTENT_DIGEST_HEADER,
  REQUIRED_COMPONENTS,
  REQUIRED_PARAMETERS,
  SIGNATURE_HEADER,
  SIGNATURE_INPUT_HEADER,
  SIGNATURE_ALGORITHMS,
  SIGNATURE_TAG,
  meetsIntegrity,
  type IntegrityLevel,
  type SignatureAlgorithm,
} from './profile.js';
import { buildSignatureBase } from './signature-base.js';

/** Framework-neutral request: the envoy adapter or a test fills it. */
export interface SignedRequest {
  readonly method: string;
  /** :authority as received. */
  readonly authority: string;
  /** Raw path without the query. */
  readonly path: string;
  /** Raw query without '?', '' when there is none. */
  readonly query: string;
  /** Lower-case name → value (repeated fields combined with ", "); undefined when absent. */
  readonly header: (name: string) => string | undefined;
  /**
   * The request content. Omit (or pass empty bytes) when there is none — Content-Digest must then be
   * the digest of empty content. Pass 'deferred' when the body arrives later; the verdict says so and
   * the caller runs checkContentDigest(verdict.contentDigest, body) itself.
   */
  readonly body?: Uint8Array | 'deferred';
  /** Unix seconds. */
  readonly now: number;
}

export interface RequestVerifierConfig {
  readonly trust: CredentialTrust;
  readonly cache: CredentialCache;
  readonly allowedAlgorithms?: readonly SignatureAlgorithm[];
  readonly freshness?: Partial<Record<keyof typeof DEFAULT_FRESHNESS, number>>;
  /** Requests whose credential's integrity level is lower are refused with attestation_insufficient. */
  readonly minIntegrity?: IntegrityLevel;
}

export interface VerifiedRequest {
  readonly ok: true;
  readonly subject: string;
  readonly deviceId: string;
  readonly integrityLevel: IntegrityLevel;
  /** The signing key's thumbprint (= cnf.jkt): the replay store's namespace. */
  readonly keyId: string;
  /** Unique per keyId until `expires`: the replay store must refuse a (keyId, nonce) it has seen. */
  readonly nonce: string;
  readonly created: number;
  readonly expires: number;
  readonly algorithm: SignatureAlgorithm;
  readonly credentialExpiresAt: number;
  readonly credentialCached: boolean;
  /** 'verified' when the body was checked; 'deferred' when the caller must still check it. */
  readonly digest: 'verified' | 'deferred';
  readonly contentDigest: string;
}

export type RequestVerdict = VerifiedRequest | SigningFailure;

/** Headers longer than this are refused before parsing (a cheap bound on work per request). */
const MAX_FIELD_LENGTH = 8192;
const FIELD_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
const EMPTY = new Uint8Array(0);

interface ParsedSignature {
  readonly ok: true;
  readonly covered: InnerList;
  readonly signature: Uint8Array;
  readonly created: number;
  readonly expires: number;
  readonly nonce: string;
  readonly keyid: string;
  readonly alg: string;
}

const stringParam = (v: BareItem | undefined): string | undefined => (v?.type === 'string' ? v.value : undefined);
const integerParam = (v: BareItem | undefined): number | undefined => (v?.type === 'integer' ? v.value : undefined);

/** Finds the one signature tagged gatehouse-v1 and checks it has the profile's shape. */
function parseSignature(request: SignedRequest): ParsedSignature | SigningFailure {
  const inputField = request.header(SIGNATURE_INPUT_HEADER);
  const signatureField = request.header(SIGNATURE_HEADER);
  if (inputField === undefined || signatureField === undefined) return fail('signature_missing', 'Signature-Input or Signature is absent');
  if (inputField.length > MAX_FIELD_LENGTH || signatureField.length > MAX_FIELD_LENGTH) return fail('signature_malformed', 'signature fields are too long');
  const inputs = parseDictionary(inputField);
  const signatures = parseDictionary(signatureField);
  if (inputs === undefined || signatures === undefined) return fail('signature_malformed', 'signature fields are not structured-field dictionaries');

  let label: string | undefined;
  let covered: InnerList | undefined;
  for (const [name, member] of inputs) {
    if (member.kind !== 'inner-list' || stringParam(member.params.get('tag')) !== SIGNATURE_TAG) continue;
    if (covered !== undefined) return fail('signature_malformed', `more than one ${SIGNATURE_TAG} signature`);
    label = name;
    covered = member;
  }
  if (covered === undefined || label === undefined) return fail('signature_missing', `no signature tagged ${SIGNATURE_TAG}`);
  const signatureMember = signatures.get(label);
  if (signatureMember?.kind !== 'item' || signatureMember.value.type !== 'bytes') return fail('signature_malformed', `Signature has no byte sequence labelled ${label}`);

  const params = covered.params;
  if (params.size !== REQUIRED_PARAMETERS.length || !REQUIRED_PARAMETERS.every((p) => params.has(p))) {
    return fail('signature_malformed', `parameters must be exactly ${REQUIRED_PARAMETERS.join(', ')}`);
  }
  const created = integerParam(params.get('created'));
  const expires = integerParam(params.get('expires'));
  const nonce = stringParam(params.get('nonce'));
  const keyid = stringParam(params.get('keyid'));
  const alg = stringParam(params.get('alg'));
  if (created === undefined || expires === undefined || nonce === undefined || keyid === undefined || alg === undefined) {
    return fail('signature_malformed', 'created/expires must be integers and nonce/keyid/alg strings');
  }
  if (!NONCE_PATTERN.test(nonce)) return fail('signature_malformed', 'nonce must be 16–64 base64url characters');

  const seen = new Set<string>();
  for (const item of covered.items) {
    if (item.value.type !== 'string' || item.params.size > 0) return fail('component_missing', 'covered components must be plain strings');
    const id = item.value.value;
    if (seen.has(id)) return fail('signature_malformed', `${id} is covered twice`);
    seen.add(id);
    const allowed = id.startsWith('@')
      ? (DERIVED_COMPONENTS as readonly string[]).includes(id)
      : FIELD_NAME.test(id) && id !== 'signature' && id !== 'signature-input';
    if (!allowed) return fail('component_missing', `${id} cannot be covered in this profile`);
  }
  for (const id of REQUIRED_COMPONENTS) if (!seen.has(id)) return fail('component_missing', `${id} is not covered`);

  return { ok: true, covered, signature: signatureMember.value.value, created, expires, nonce, keyid, alg };
}

/** Builds the verifier once per configuration; the returned function is the hot path. */
export function createRequestVerifier(config: RequestVerifierConfig): (request: SignedRequest) => RequestVerdict {
  const allowed = new Set<string>(config.allowedAlgorithms ?? SIGNATURE_ALGORITHMS);
  const { maxAgeSeconds, maxSkewSeconds, maxLifetimeSeconds } = { ...DEFAULT_FRESHNESS, ...config.freshness };

  return function verifyRequest(request: SignedRequest): RequestVerdict {
    try {
      // 1. parse
      const parsed = parseSignature(request);
      if (!parsed.ok) return parsed;
      const token = request.header(CREDENTIAL_HEADER);
      if (token === undefined) return fail('credential_missing', `${CREDENTIAL_HEADER} is absent`);
      // 2. credential (cached by hash)
      const found = config.cache.lookup(token, config.trust, request.now);
      if (!found.ok) return found;
      const credential = found.credential;
      if (parsed.keyid !== credential.keyThumbprint) return fail('credential_wrong_device', 'keyid is not the credential cnf.jkt');
      // The key decides the algorithm; alg must agree with it and with configuration.
      if (!allowed.has(parsed.alg) || parsed.alg !== credential.algorithm) return fail('algorithm_not_allowed', `alg ${parsed.alg} is not allowed for this key`);
      if (config.minIntegrity !== undefined && !meetsIntegrity(credential.integrityLevel, config.minIntegrity)) {
        return fail('attestation_insufficient', `credential integrity ${credential.integrityLevel} is below ${config.minIntegrity}`);
      }
      // 3. freshness
      if (parsed.expires <= parsed.created || parsed.expires - parsed.created > maxLifetimeSeconds) {
        return fail('signature_malformed', `expires must be after created and within ${maxLifetimeSeconds}s of it`);
      }
      // Comparisons are written so that a NaN clock fails closed.
      if (!(parsed.created <= request.now + maxSkewSeconds)) return fail('signature_future_dated', 'created is in the future');
      if (!(parsed.created >= request.now - maxAgeSeconds)) return fail('signature_stale', 'created is too old');
      if (!(request.now < parsed.expires)) return fail('signature_stale', 'signature has expired');
      // 4. signature
      const base = buildSignatureBase(parsed.covered, request);
      if (!base.ok) {
        return base.reason === 'absent' ? fail('component_missing', `${base.component} is covered but absent`) : fail('signature_malformed', `${base.component} has an invalid value`);
      }
      if (!verifyRaw(credential.algorithm, credential.publicKey, utf8(base.base), parsed.signature)) return fail('signature_invalid', 'signature does not verify');
      // 5. content digest (covered, so its field value is already authenticated)
      const contentDigest = request.header(CONTENT_DIGEST_HEADER) ?? '';
      let digest: 'verified' | 'deferred' = 'deferred';
      if (request.body !== 'deferred') {
        const checked = checkContentDigest(contentDigest, request.body ?? EMPTY);
        if (!checked.ok) return checked;
        digest = 'verified';
      }
      return {
        ok: true,
        subject: credential.subject,
        deviceId: credential.deviceId,
        integrityLevel: credential.integrityLevel,
        keyId: credential.keyThumbprint,
        nonce: parsed.nonce,
        created: parsed.created,
        expires: parsed.expires,
        algorithm: credential.algorithm,
        credentialExpiresAt: credential.expiresAt,
        credentialCached: found.cached,
        digest,
        contentDigest,
      };
    } catch (error) {
      // Unreachable by design (every step answers with a code); kept so a bug fails closed with a code.
      return fail('signature_malformed', `verifier error: ${error instanceof Error ? error.message : 'unknown'}`);
    }
  };
}
