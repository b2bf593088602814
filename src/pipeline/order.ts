// The order of filters in every chain, from one table (Spring Cloud Gateway's named order
// constants): a route lists which filters it uses and their config; where they run is decided here.
// Gaps leave room for filters that come later.
//
// signed runs before e2ee: the signature's Content-Digest covers the body as the app sent
// it (the ciphertext), so `signed` must see it before e2ee replaces it with the plaintext; and e2ee
// then finds the signing identity in ctx.state to check that both name the same device
// (docs/protocol/e2ee.md §9). Response phases unwind, so e2ee still encrypts the response last of
// the filters after it.
//
// issuance (the challenge, enroll and credential endpoints) answers its requests itself, so nothing
// after it runs on its route: it comes after sanitize (forged headers gone, header limits applied)
// and mtls (a deployment may put the endpoints behind client certificates), beside signed
// whose credentials it issues, and before e2ee: its bodies are plaintext by contract (public keys and
// signed statements). Filters ordered after it (e2ee, passport, breaker, headers) never run on its
// route, which the loader does not refuse: they would have nothing to do there.
//
// The keys are the filters' config names (src/filters/registry.ts): FILTER_NAMES lists them, and
// src/filters/registry.test.ts keeps the registry, this table and each definition's order equal.
export const FILTER_NAMES = ['sanitize', 'mtls', 'signed', 'issuance', 'e2ee', 'e2eeKeys', 'passport', 'passportKeys', 'breaker', 'headers'] as const;

export type FilterName = (typeof FILTER_NAMES)[number];

export const FILTER_ORDER = {
  sanitize: 100,
  mtls: 200,
  signed: 300,
  issuance: 350,
  e2ee: 400,
  /** answers its route itself (the key configurations): where e2ee would run */
  e2eeKeys: 400,
  passport: 500,
  /** answers its route itself (the JWKS): where passport would run */
  passportKeys: 500,
  breaker: 600,
  headers: 900,
} as const satisfies Record<FilterName, number>;
