// What filters hand each other through ctx.state, as typed keys: a filter reads what an earlier one
// established without importing it (and without a cast), and security/ reads who a refused request
// claimed to be without the filters importing security/.
//
// The rule: a key read by any module other than the one that writes it is declared in STATE here,
// with its value's type; a key a filter keeps for itself (between its own phases) is made with
// stateKey() in that filter. Keys are objects, so two keys never collide whatever their names.
import type { IntegrityLevel } from '../protocol/signing/profile.js';

declare const valueType: unique symbol;

/** A ctx.state key whose value is a T; `name` is for debugging and logs only. */
export interface StateKey<T> {
  readonly name: string;
  /** never set: carries T for the compiler */
  readonly [valueType]?: T;
}

export function stateKey<T>(name: string): StateKey<T> {
  return Object.freeze({ name });
}

/** A request's ctx.state: values by typed key. */
export class RequestState {
  private readonly values = new Map<StateKey<unknown>, unknown>();

  get<T>(key: StateKey<T>): T | undefined {
    return this.values.get(key) as T | undefined;
  }

  set<T>(key: StateKey<T>, value: T): void {
    this.values.set(key, value);
  }

  has(key: StateKey<unknown>): boolean {
    return this.values.has(key);
  }

  delete(key: StateKey<unknown>): boolean {
    return this.values.delete(key);
  }
}

/** the signer the `signed` filter verified (its request signature, with its credential's key) */
export interface SignedIdentity {
  /** the account (credential `sub`) */
  readonly subject: string;
  readonly deviceId: string;
  readonly integrityLevel: IntegrityLevel;
  /** the request key's thumbprint (credential cnf.jkt) */
  readonly keyId: string;
}

/** the partner client the `mtls` filter authorized */
export interface AuthenticatedClient {
  readonly id: string;
  readonly scopes: readonly string[];
}

/**
 * How sure gatehouse is of who a request named (src/security/events.ts):
 *  - verified: a signature verified with the key its credential binds, or a verified client certificate;
 *  - credential: the credential verified (issuer signature) but the request did not;
 *  - claimed: read from something nothing verified. Reported, never counted by a disable rule.
 */
export type IdentityTrust = 'verified' | 'credential' | 'claimed';

/** who a request named, as a filter saw it: kept for the security event should the request be refused */
export interface Claimant {
  readonly subject?: string;
  readonly device?: string;
  readonly trust: IdentityTrust;
}

export const STATE = {
  /** written by `signed`; read by `e2ee` (same device?) and `passport` (whose identity to sign) */
  signedIdentity: stateKey<SignedIdentity>('signed.identity'),
  /** written by `mtls`; for later filters */
  mtlsClient: stateKey<AuthenticatedClient>('mtls.client'),
  /** written by any filter that read an identity; read by security/ when the request is refused */
  claimant: stateKey<Claimant>('security.claimant'),
} as const;

/** for filters: who the request named, kept for the security event should the request be refused */
export function recordClaimant(ctx: { readonly state: RequestState }, claimant: Claimant): void {
  ctx.state.set(STATE.claimant, claimant);
}
