// The one place FilterDeps are made: once per process by startGatehouse (and kept across reloads),
// or per test.
import { Breakers, type BreakerEvents } from '../filters/breaker/breakers.js';
import type { MtlsDeps } from '../filters/mtls/clients.js';
import { CredentialCache } from '../protocol/signing/credential.js';
import { createMemoryStores, type Stores } from '../stores/index.js';
import type { FilterDeps } from './types.js';

export function createFilterDeps(
  options: { readonly now?: () => number; readonly stores?: Stores; readonly breakerEvents?: BreakerEvents; readonly mtls?: MtlsDeps } = {},
): FilterDeps {
  const now = options.now ?? Date.now;
  return {
    now,
    stores: options.stores ?? createMemoryStores(),
    breakers: new Breakers(options.breakerEvents ?? { onStateChange: () => undefined }, now),
    credentials: new CredentialCache(),
    ...(options.mtls ? { mtls: options.mtls } : {}),
  };
}
