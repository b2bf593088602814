// Every filter gatehouse knows, by config name. A route naming a filter not listed here is a config
// error. New filters are added here and get their place in the chain from FILTER_ORDER.
import type { FilterDefinition } from '../pipeline/types.js';
import { breakerFilter } from './breaker/breaker.js';
import { e2eeFilter, e2eeKeysFilter } from './e2ee/e2ee.js';
import { headersFilter } from './headers/headers.js';
import { issuanceFilter } from './issuance/issuance.js';
import { mtlsFilter } from './mtls/mtls.js';
import { passportFilter, passportKeysFilter } from './passport/passport.js';
import { sanitizeFilter } from './sanitize/sanitize.js';
import { signedFilter } from './signed/signed.js';

export const FILTER_REGISTRY: ReadonlyMap<string, FilterDefinition> = new Map<string, FilterDefinition>(
  [sanitizeFilter, mtlsFilter, signedFilter, issuanceFilter, e2eeFilter, e2eeKeysFilter, passportFilter, passportKeysFilter, breakerFilter, headersFilter].map((typed) => {
    const definition = typed as unknown as FilterDefinition;
    return [definition.name, definition];
  }),
);
