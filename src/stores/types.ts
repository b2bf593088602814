// What the stores answer. Every call resolves to a result and never throws or hangs: a Redis outage
// is `{ ok: false, reason: 'unavailable' }` within the command timeout, and the filter applies its
// route's failure mode (fail closed: 503 dependency_unavailable; fail open: carry on).
import type { DeviceKey } from '../protocol/e2ee/envelope.js';
import type { ChallengeConsumption } from '../protocol/signing/challenge-ledger.js';
import type { EnrolledDevice } from '../protocol/signing/enrollment.js';
import type { ImportedPublicKey } from '../protocol/signing/keys.js';

/**
 * Why a store could not answer:
 * - `unavailable`: Redis down, timed out, or refused the command;
 * - `capacity`: a memory store is full (it refuses rather than forget entries that are still live);
 * - `corrupt`: a stored record does not parse (written by another version, or by hand);
 * - `invalid`: the call's arguments are out of range (a caller's bug, e.g. a TTL of 0);
 * - `forgotten`: a nonce claim of a signature that may have been made before the Redis behind the
 *   store lost what it held (restart without persistence, failover to a replica that missed writes):
 *   its nonce may have been claimed and forgotten, so the store cannot say it is a first use. Never a
 *   case for failing open: the caller refuses the request (the client signs a new one).
 */
export type StoreFailureReason = 'unavailable' | 'capacity' | 'corrupt' | 'invalid' | 'forgotten';

export interface StoreFailure {
  readonly ok: false;
  readonly reason: StoreFailureReason;
  /** for the log only */
  readonly detail: string;
}

export function storeFailure(reason: StoreFailureReason, detail: string): StoreFailure {
  return { ok: false, reason, detail };
}

// ---- nonces ------------------------------------------------------------------------------------------

export type NonceClaim = { readonly ok: true; readonly firstUse: boolean } | StoreFailure;

export interface NonceStore {
  /**
   * Records (keyId, nonce) for ttlMs. firstUse is true for exactly one of any number of concurrent
   * claims of the same pair, across every gatehouse sharing the store; false means a replay.
   * `signedNotBeforeMs`: the earliest the signature may have been made (its `created` less the
   * allowed clock skew); a store that lost its memory after that answers `forgotten`.
   */
  claim(keyId: string, nonce: string, ttlMs: number, signedNotBeforeMs?: number): Promise<NonceClaim>;
}

// ---- challenges --------------------------------------------------------------------------------------

/**
 * The protocol's ChallengeLedger answers ok or a SigningFailure and has no word for "the ledger is
 * down"; a shared ledger needs one, so the stores' ledger may also answer a StoreFailure (the filter
 * then applies the route's failure mode). MemoryChallengeLedger satisfies this interface as it is.
 */
export interface ChallengeStore {
  consume(challengeId: string, expiresAt: number, now: number): ChallengeConsumption | StoreFailure | PromiseLike<ChallengeConsumption | StoreFailure>;
}

// ---- devices -----------------------------------------------------------------------------------------

/** A device record as the filters use it: parsed once when it is read, then cached. */
export interface StoredDevice {
  readonly device: EnrolledDevice;
  /** Unix ms when revoked; absent while the device is active */
  readonly revokedAt?: number;
  /** the signing key, imported once (KeyObject, algorithm, thumbprint) */
  readonly signingKey: ImportedPublicKey;
  /**
   * the e2ee key, built once with deviceKeyFromRaw: e2ee's static-DH cache is keyed by this object,
   * so a cached record is what makes that cache hit
   */
  readonly e2eeKey?: DeviceKey;
}

export type DeviceLookup = { readonly ok: true; readonly device: StoredDevice | undefined } | StoreFailure;
export type StoreWrite = { readonly ok: true } | StoreFailure;
/** `existed: false` when there was nothing to change */
export type StoreChange = { readonly ok: true; readonly existed: boolean } | StoreFailure;

export interface DeviceRegistry {
  /** Stores an enrolled device. A revoked device stays revoked: revocation belongs to the key. */
  put(device: EnrolledDevice): Promise<StoreWrite>;
  /**
   * The device with its parsed keys, revoked ones included (revokedAt set); undefined if unknown.
   * `fresh`: past any local cache, to the shared store (the admin API: an operator sees what every
   * replica will see, not this replica's copy).
   */
  get(deviceId: string, options?: { readonly fresh?: boolean }): Promise<DeviceLookup>;
  /** Marks the device revoked. This replica forgets its cached copy at once; others within the cache TTL. */
  revoke(deviceId: string, now: number): Promise<StoreChange>;
}

// ---- accounts ----------------------------------------------------------------------------------------

export interface AccountDisabled {
  readonly reason: string;
  /** who disabled it (an operator, a fraud system) */
  readonly by: string;
  /** Unix ms */
  readonly at: number;
}

export type AccountLookup = { readonly ok: true; readonly disabled: AccountDisabled | undefined } | StoreFailure;

export interface ListedAccount extends AccountDisabled {
  /** the subject, or (a record written before subjects were stored, under a hashed key) its key */
  readonly subject: string;
}

/** truncated: there were more than the limit asked for */
export type AccountList = { readonly ok: true; readonly accounts: readonly ListedAccount[]; readonly truncated: boolean } | StoreFailure;

export interface AccountStatus {
  disable(subject: string, reason: string, by: string, now: number): Promise<StoreWrite>;
  enable(subject: string): Promise<StoreChange>;
  /** disabled: undefined while the account is enabled */
  isDisabled(subject: string): Promise<AccountLookup>;
  /** the disabled accounts, at most `limit` (for operators: a scan, not for the request path) */
  list(limit: number): Promise<AccountList>;
}

// ---- the set -----------------------------------------------------------------------------------------

export interface StoreStatus {
  readonly kind: 'memory' | 'redis';
  /** redis: standalone | sentinel | cluster */
  readonly mode?: string;
  /** redis: ioredis' connection state (ready, connecting, reconnecting, ...), or checking: connected, the server's identity not yet checked (src/stores/redis.ts) */
  readonly state: string;
  readonly lastError?: string;
}

export interface Stores {
  readonly nonces: NonceStore;
  readonly challenges: ChallengeStore;
  readonly devices: DeviceRegistry;
  readonly accounts: AccountStatus;
  status(): StoreStatus;
  /** closes connections; calls made afterwards answer unavailable */
  close(): Promise<void>;
}
