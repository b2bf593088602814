// `passport`: the upstream gets a short-lived signed statement of who is calling (docs/protocol/passport.md),
// so no upstream service resolves the user or device itself.
//  - the identity is the one `signed` verified earlier in the chain (ctx.state, STATE.signedIdentity);
//    without it the request is refused (401 passport_identity_missing): a passport never vouches
//    for an unverified caller;
//  - claims: sub = credential subject, dev.id = signing device id, itl from the credential's
//    integrity (§2: basic 1, device 2, strong 3), txn = request id. amr and aal from the user API
//    (`userApi`, user-api.ts) when configured; otherwise, or failing open, [] and 0: a device
//    signature proves the device, not how the user authenticated (a device-only session in §2's terms);
//  - the header is set, not appended: sanitize strips a client's x-passport too, and a set
//    replaces whatever is left.
// `passportKeys` answers its own route with the JWKS (application/jwk-set+json), reached through
// the gateway like e2eeKeys.
import { createPassportIssuer, jwksDocument, PassportIssueError, type IntegrityLevel as PassportIntegrityLevel } from '../../protocol/passport/index.js';
import type { IntegrityLevel as SigningIntegrityLevel } from '../../protocol/signing/profile.js';
import { HEADER } from '../../pipeline/headers.js';
import { FILTER_ORDER } from '../../pipeline/order.js';
import { publishedDocument, type PublishedDocument } from '../published.js';
import { CONTINUE, type FilterDefinition, type FilterDeps, type Outcome, type RequestContext } from '../../pipeline/types.js';
import { STATE, type SignedIdentity } from '../../pipeline/state.js';
import { UserApiClient, type UserFacts } from './user-api.js';
import { passportConfig, passportConfigIn, passportKeysConfig, passportKeysConfigIn, type PassportConfig, type PassportKeysConfig } from './config.js';

export const PASSPORT_FILTER = 'passport';
export const PASSPORT_KEYS_FILTER = 'passportKeys';

/** RFC 7517 §8.5.1 */
export const JWKS_MEDIA_TYPE = 'application/jwk-set+json';

/** docs/protocol/passport.md §2: the credential's integrity verdict as the passport's itl */
export const INTEGRITY_TO_ITL: Readonly<Record<SigningIntegrityLevel, PassportIntegrityLevel>> = { basic: 1, device: 2, strong: 3 };

/** `action` recorded when the user API could not answer and failureMode is open */
export const PASSPORT_FAILED_OPEN = 'user_api_failed_open';

/** Without a user API (or failing open): a device signature proves the device, not a user factor. */
const NO_USER_FACTS: UserFacts = Object.freeze({ amr: Object.freeze([]), aal: 0 });

export function compilePassport(config: PassportConfig, deps: FilterDeps) {
  const issuer = createPassportIssuer({ keyring: config.keysFile.value, issuer: config.issuer, lifetimeSeconds: config.lifetimeSeconds });
  const userApi = config.userApi === undefined ? undefined : { client: new UserApiClient(config.userApi, deps), failureMode: config.userApi.failureMode };

  function issue(ctx: RequestContext, identity: SignedIdentity, facts: UserFacts): Outcome {
    let passport: string;
    try {
      passport = issuer.issuePassport({
        sub: identity.subject,
        aud: config.audience,
        txn: ctx.decisionId,
        dev: { id: identity.deviceId },
        amr: facts.amr,
        aal: facts.aal,
        itl: INTEGRITY_TO_ITL[identity.integrityLevel],
      });
    } catch (error) {
      // a verified identity the passport cannot carry (e.g. a subject over 256 characters)
      if (error instanceof PassportIssueError) return { kind: 'deny', reason: 'internal_error', detail: `passport: ${error.message}` };
      throw error;
    }
    ctx.requestEdits.set(HEADER.passport, passport);
    return CONTINUE;
  }

  function resolveAndIssue(ctx: RequestContext, identity: SignedIdentity): Outcome | Promise<Outcome> {
    if (userApi === undefined) return issue(ctx, identity, NO_USER_FACTS);
    return userApi.client.lookup(identity.subject).then((found): Outcome => {
      if (found.ok) return issue(ctx, identity, found.facts);
      // a definite answer, the same in either failure mode: no passport for a user that does not exist
      if (found.unknown === true) return { kind: 'deny', reason: 'user_unknown', detail: `passport: ${found.detail}` };
      if (userApi.failureMode === 'closed') return { kind: 'deny', reason: 'dependency_unavailable', detail: `passport: ${found.detail}` };
      ctx.recordAction({ filter: PASSPORT_FILTER, action: PASSPORT_FAILED_OPEN });
      return issue(ctx, identity, NO_USER_FACTS);
    });
  }

  const identityOf = (ctx: RequestContext): SignedIdentity | undefined => ctx.state.get(STATE.signedIdentity);
  // requests that got their passport at the headers (a signed GET and the like)
  const issuedAtHeaders = new WeakSet<RequestContext>();
  const missing: Outcome = Object.freeze({ kind: 'deny', reason: 'passport_identity_missing', detail: 'passport: no verified identity (the route needs `signed`)' });

  return {
    onRequestHeaders(ctx: RequestContext): Outcome | Promise<Outcome> {
      const identity = identityOf(ctx);
      if (identity !== undefined) {
        issuedAtHeaders.add(ctx);
        return resolveAndIssue(ctx, identity);
      }
      // `signed` admits a request with a body only once it has checked the body's digest
      return ctx.requestBodyFollows ? CONTINUE : missing;
    },
    onRequestBody(ctx: RequestContext): Outcome | Promise<Outcome> {
      if (issuedAtHeaders.has(ctx)) return CONTINUE;
      const identity = identityOf(ctx);
      return identity === undefined ? missing : resolveAndIssue(ctx, identity);
    },
    release(): void {
      userApi?.client.release();
    },
  };
}

export const passportFilter: FilterDefinition<typeof passportConfig> = {
  name: PASSPORT_FILTER,
  order: FILTER_ORDER.passport,
  configSchema: passportConfig,
  configSchemaIn: passportConfigIn,
  // the body phase: where `signed` hands over the identity of a request with a body
  needs: () => ({ requestBody: true }),
  create: (config, deps) => compilePassport(config, deps),
};

/** Answers the route itself with the JWKS: upstream verifiers fetch it through the gateway. */
export function compilePassportKeys(config: PassportKeysConfig): PublishedDocument {
  return publishedDocument(JWKS_MEDIA_TYPE, Buffer.from(JSON.stringify(jwksDocument(config.keysFile.value))), config.maxAgeSeconds);
}

export const passportKeysFilter: FilterDefinition<typeof passportKeysConfig> = {
  name: PASSPORT_KEYS_FILTER,
  order: FILTER_ORDER.passportKeys,
  configSchema: passportKeysConfig,
  configSchemaIn: passportKeysConfigIn,
  needs: () => ({}),
  create: (config) => compilePassportKeys(config),
};
