// Account and device standing: the one check every route that identifies a device makes before it
// serves it — the device is enrolled and not revoked, and its account is not disabled. `signed` asks
// it for the credential's device, `e2ee` for the device that sealed the body (on a route without
// `signed`), `issuance` for the device a credential request names and for an enrolling account. One
// place, so a route that identifies a device another way cannot forget half of it.
import type { DenyReasonCode } from '../pipeline/deny.js';
import type { StoredDevice, StoreFailure, Stores } from '../stores/types.js';

export interface StandingQuery {
  /** the device the request identifies */
  readonly deviceId: string;
  /** the lookup when the caller already made it (e2ee needs the key first), unknown device included; read here otherwise */
  readonly read?: { readonly device: StoredDevice | undefined };
  /** the account; the device record's subject when absent */
  readonly subject?: string;
  /** enrollment: a device that is not enrolled yet is what it is about to become, not a refusal */
  readonly unknownDevice?: 'refuse' | 'allow';
}

export type Standing =
  | { readonly kind: 'good'; readonly stored: StoredDevice | undefined }
  | { readonly kind: 'refused'; readonly reason: Extract<DenyReasonCode, 'device_revoked' | 'account_disabled'>; readonly detail: string }
  /** a store could not answer: the caller applies its failure mode (what did answer was fine) */
  | { readonly kind: 'unavailable'; readonly failures: readonly { readonly store: 'devices' | 'accounts'; readonly failure: StoreFailure }[] };

/** Reads what it needs (the device and the account in parallel when both are to be read) and answers once. */
export async function checkStanding(stores: Pick<Stores, 'devices' | 'accounts'>, query: StandingQuery): Promise<Standing> {
  const [device, subjectOf] = await Promise.all([
    query.read === undefined ? stores.devices.get(query.deviceId) : Promise.resolve({ ok: true as const, device: query.read.device }),
    // with the subject given, its account is read beside the device
    query.subject === undefined ? Promise.resolve(undefined) : stores.accounts.isDisabled(query.subject),
  ]);
  const failures: { store: 'devices' | 'accounts'; failure: StoreFailure }[] = [];
  let stored: StoredDevice | undefined;
  if (!device.ok) failures.push({ store: 'devices', failure: device });
  else {
    stored = device.device;
    if (stored === undefined && query.unknownDevice !== 'allow') return { kind: 'refused', reason: 'device_revoked', detail: `device ${query.deviceId} is not enrolled` };
    // revocation belongs to the key: it holds for enrolling the same key again too
    if (stored?.revokedAt !== undefined) return { kind: 'refused', reason: 'device_revoked', detail: `device ${query.deviceId} was revoked` };
  }
  const subject = query.subject ?? stored?.device.subject;
  const account = subjectOf ?? (subject === undefined ? undefined : await stores.accounts.isDisabled(subject));
  if (account !== undefined) {
    if (!account.ok) failures.push({ store: 'accounts', failure: account });
    else if (account.disabled !== undefined) return { kind: 'refused', reason: 'account_disabled', detail: `account disabled by ${account.disabled.by}: ${account.disabled.reason}` };
  }
  return failures.length > 0 ? { kind: 'unavailable', failures } : { kind: 'good', stored };
}
