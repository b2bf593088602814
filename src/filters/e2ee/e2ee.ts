// `e2ee`: request bodies the app encrypted (docs/protocol/e2ee.md) are decrypted here, and the
// upstream's response body is encrypted back for that request only (§9 is this filter's contract).
//  - headers: a Content-Type other than the e2ee one is refused (415) or, with `plaintext: pass`,
//    left alone both ways; a declared Content-Length over the limit is refused before buffering;
//  - request body: the pure checks first (checkRequestEnvelope: Content-Type, size,
//    envelope, key id, suite, binding), so a malformed or stale-key envelope costs no store call;
//    then the device's enrolled key from the store, then decryption. The upstream gets the
//    plaintext with the inner Content-Type (Content-Length is fixed by the adapter);
//  - `signed` runs before this filter (FILTER_ORDER) on the ciphertext; when it did, the device it
//    verified must be the one that sealed the body, or 401 credential_wrong_device; when it did not,
//    the sealing device and its account are checked here once decryption authenticated the device
//    (checkStanding: 403 device_revoked, 403 account_disabled);
//  - every refusal carries Date, as signed's do;
//  - response headers of a decrypted request: every header derived from the body (ETag, digests,
//    and the route's removeResponseHeaders) is removed, so nothing beside the sealed body describes
//    the plaintext; Content-Length is recomputed by the adapter for the sealed bytes;
//  - response body: encrypted with the request's ResponseEncrypter, Content-Type
//    application/vnd.gatehouse.e2ee-response. A response without a body has nothing to encrypt and
//    passes as it is (status only: the app treats it as unauthenticated, like a refusal).
import {
  checkRequestEnvelope,
  E2EE_KEYS_MEDIA_TYPE,
  E2EE_REQUEST_MEDIA_TYPE,
  E2EE_RESPONSE_MEDIA_TYPE,
  isMediaType,
  openCheckedEnvelope,
  type DecryptRequestInput,
  type E2eeFailure,
  type E2eeSizeLimits,
  type ResponseEncrypter,
} from '../../protocol/e2ee/index.js';
import { recordClaimant, STATE, stateKey } from '../../pipeline/state.js';
import { checkStanding } from '../standing.js';
import type { DenyReasonCode } from '../../pipeline/deny.js';
import { BODY_DERIVED_RESPONSE_HEADERS, HEADER } from '../../pipeline/headers.js';
import { FILTER_ORDER } from '../../pipeline/order.js';
import { publishedDocument, type PublishedDocument } from '../published.js';
import { CONTINUE, type BodyOutcome, type FilterDefinition, type FilterDeps, type Outcome, type RequestContext } from '../../pipeline/types.js';
import { e2eeConfig, e2eeConfigIn, e2eeKeysConfig, e2eeKeysConfigIn, type E2eeConfig, type E2eeKeysConfig } from './config.js';

export const E2EE_FILTER = 'e2ee';
export const E2EE_KEYS_FILTER = 'e2eeKeys';

/** ctx.state key under which later filters find the device that sealed the request */
export const E2EE_STATE = stateKey<E2eeRequestState>('e2ee.request');

export interface E2eeRequestState {
  /** authenticated by decryption: only this device's X25519 private key could have sealed the body */
  readonly deviceId: string;
  /** the gateway key id the app used */
  readonly keyId: number;
  /** enc in hex, unique per request: for a replay cache where a route has no signing */
  readonly replayKey: string;
  /** encrypts this request's response, and only its */
  readonly response: ResponseEncrypter;
}

/** `action` recorded on a request that passed in plaintext (`plaintext: pass`) */
export const E2EE_PLAINTEXT_PASSED = 'plaintext_passed';

type Denial = Extract<Outcome, { kind: 'deny' }>;

/** Several Content-Type headers are joined, so they can never pass for the one e2ee media type. */
function contentTypeOf(headers: RequestContext['requestHeaders'] | undefined): string | undefined {
  const values = headers?.getAll(HEADER.contentType) ?? [];
  return values.length === 0 ? undefined : values.join(', ');
}

export function compileE2ee(config: E2eeConfig, deps: FilterDeps) {
  const limits: E2eeSizeLimits = { maxRequestBytes: config.maxRequestBytes, maxResponseBytes: config.maxResponseBytes };
  const plaintextDerived = [...new Set<string>([...BODY_DERIVED_RESPONSE_HEADERS, ...config.removeResponseHeaders])];
  // every refusal carries gatehouse's clock, as signed ones do: an app whose clock is off can correct it
  const deny = (reason: DenyReasonCode, detail: string): Denial => ({ kind: 'deny', reason, detail, headers: { [HEADER.date]: new Date(deps.now()).toUTCString() } });
  const refuse = (failure: E2eeFailure): Denial => deny(failure.code, failure.detail);
  // requests that passed in plaintext (`plaintext: pass`): their bodies are left alone
  const plaintextRequests = new WeakSet<RequestContext>();

  const input = (ctx: RequestContext, body: Buffer): DecryptRequestInput => ({
    body,
    contentType: contentTypeOf(ctx.requestHeaders),
    method: ctx.method,
    path: ctx.path,
    audience: config.audience,
  });

  async function decrypt(ctx: RequestContext, body: Buffer): Promise<BodyOutcome> {
    // The pure checks, in the documented order, before any store call; the envelope is parsed once
    // and carried to the decryption.
    const named = checkRequestEnvelope(input(ctx, body), { keyring: config.keys, limits });
    if (!named.ok) return refuse(named);
    // for a security event should this body be refused: the signed identity when `signed` verified
    // one, else only the envelope's device key id, which nothing has authenticated yet
    const signer = ctx.state.get(STATE.signedIdentity);
    recordClaimant(ctx, signer === undefined ? { device: named.deviceKeyId, trust: 'claimed' } : { subject: signer.subject, device: signer.deviceId, trust: 'verified' });
    const lookup = await deps.stores.devices.get(named.deviceKeyId);
    // failureMode is always closed: without the enrolled key there is nothing to open
    if (!lookup.ok) return deny('dependency_unavailable', `e2ee: devices: ${lookup.reason} (${lookup.detail})`);
    const stored = lookup.device;
    // unknown, or enrolled without an e2ee key: decryptRequest answers e2ee_unknown_device
    const opened = openCheckedEnvelope(named, stored?.e2eeKey);
    if (!opened.ok) return refuse(opened);
    if (signer !== undefined && signer.deviceId !== opened.deviceKeyId) {
      return deny('credential_wrong_device', `e2ee: sealed by device ${opened.deviceKeyId}, signed for device ${signer.deviceId}`);
    }
    if (signer === undefined) {
      // The envelope proves the device sealed it, but a route without `signed` has no nonce: a captured
      // envelope opens again, so what follows is only as sure as a credential. The device and its
      // account are checked here, once the device is authenticated (`signed` did it for its own).
      recordClaimant(ctx, { ...(stored === undefined ? {} : { subject: stored.device.subject }), device: opened.deviceKeyId, trust: 'credential' });
      const standing = await checkStanding(deps.stores, { deviceId: opened.deviceKeyId, read: { device: stored } });
      if (standing.kind === 'refused') return deny(standing.reason, `e2ee: ${standing.detail}`);
      if (standing.kind === 'unavailable') return deny('dependency_unavailable', `e2ee: ${standing.failures.map(({ store, failure }) => `${store}: ${failure.reason} (${failure.detail})`).join('; ')}`);
    }
    ctx.state.set(E2EE_STATE, { deviceId: opened.deviceKeyId, keyId: opened.keyId, replayKey: opened.replayKey, response: opened.response } satisfies E2eeRequestState);
    if (opened.contentType === null) ctx.requestEdits.remove(HEADER.contentType);
    else ctx.requestEdits.set(HEADER.contentType, opened.contentType);
    return { kind: 'replaceBody', body: opened.plaintext };
  }

  return {
    onRequestHeaders(ctx: RequestContext): Outcome {
      const contentType = contentTypeOf(ctx.requestHeaders);
      if (!isMediaType(contentType, E2EE_REQUEST_MEDIA_TYPE)) {
        if (config.plaintext === 'refuse') return deny('e2ee_content_type_invalid', `content-type ${JSON.stringify(contentType ?? null)}`);
        plaintextRequests.add(ctx);
        ctx.recordAction({ filter: E2EE_FILTER, action: E2EE_PLAINTEXT_PASSED });
        return CONTINUE;
      }
      // An e2ee request with no body: an empty envelope, refused now rather than never decided.
      if (!ctx.requestBodyFollows) return deny('e2ee_envelope_malformed', 'an e2ee request without a body');
      const declared = Number(ctx.requestHeaders.get(HEADER.contentLength));
      if (declared > config.maxRequestBytes) return deny('e2ee_too_large', `content-length ${declared} > ${config.maxRequestBytes}`);
      return CONTINUE;
    },
    onRequestBody(ctx: RequestContext, body: Buffer): BodyOutcome | Promise<BodyOutcome> {
      if (plaintextRequests.has(ctx)) return CONTINUE;
      return decrypt(ctx, body);
    },
    onResponseHeaders(ctx: RequestContext): Outcome {
      // only a response that will be sealed: a plaintext request's answer is the upstream's own
      if (ctx.state.get(E2EE_STATE) === undefined) return CONTINUE;
      for (const name of plaintextDerived) if (ctx.responseHeaders?.has(name) === true) ctx.responseEdits.remove(name);
      return CONTINUE;
    },
    onResponseBody(ctx: RequestContext, body: Buffer): BodyOutcome {
      const request = ctx.state.get(E2EE_STATE);
      // plaintext passed, or a later filter's refusal: nothing was decrypted, nothing to encrypt for
      if (request === undefined) return CONTINUE;
      const upstreamType = ctx.responseHeaders?.get(HEADER.contentType) ?? null;
      const sealed = request.response.encrypt(body, upstreamType);
      if (!sealed.ok) return refuse(sealed);
      ctx.responseEdits.set(HEADER.contentType, E2EE_RESPONSE_MEDIA_TYPE);
      return { kind: 'replaceBody', body: sealed.body };
    },
  };
}

export const e2eeFilter: FilterDefinition<typeof e2eeConfig> = {
  name: E2EE_FILTER,
  order: FILTER_ORDER.e2ee,
  configSchema: e2eeConfig,
  configSchemaIn: e2eeConfigIn,
  needs: () => ({ requestBody: true, responseBody: true }),
  create: (config, deps) => compileE2ee(config, deps),
};

/** Answers the route itself with the key configuration list: the app fetches it through Envoy. */
export function compileE2eeKeys(config: E2eeKeysConfig): PublishedDocument {
  return publishedDocument(E2EE_KEYS_MEDIA_TYPE, config.keys.encodedKeyConfigs(), config.maxAgeSeconds);
}

export const e2eeKeysFilter: FilterDefinition<typeof e2eeKeysConfig> = {
  name: E2EE_KEYS_FILTER,
  order: FILTER_ORDER.e2eeKeys,
  configSchema: e2eeKeysConfig,
  configSchemaIn: e2eeKeysConfigIn,
  needs: () => ({}),
  create: (config) => compileE2eeKeys(config),
};
