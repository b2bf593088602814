// The one place FilterDeps are made (here, beside the filters whose services they hold): once per process by startGatehouse (and kept across reloads),
// or per test.
import type { MtlsDeps, UserApiCallObserver } from '../pipeline/services.js';
import type { FilterDeps } from '../pipeline/types.js';
import { CredentialCache } from '../protocol/signing/credential.js';
import { createMemoryStores, type Stores } from '../stores/index.js';
import { Breakers, type BreakerEvents } from './breaker/breakers.js';

export function createFilterDeps(
  options: { readonly now?: () => number; readonly stores?: Stores; readonly breakerEvents?: BreakerEvents; readonly mtls?: MtlsDeps; readonly userApiCalls?: UserApiCallObserver } = {},
): FilterDeps {
  const now = options.now ?? Date.now;
  return {
    now,
    stores: options.stores ?? createMemoryStores(),
    breakers: new Breakers(options.breakerEvents ?? { onStateChange: () => undefined }, now),
    credentials: new CredentialCache(),
    userApiCalls: options.userApiCalls ?? { userApiCall: () => undefined },
    ...(options.mtls ? { mtls: options.mtls } : {}),
  };
}
