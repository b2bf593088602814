// The order of filters in every chain, from one table (Spring Cloud Gateway's named order
// constants): a route lists which filters it uses and their config; where they run is decided here.
// Gaps leave room for filters that come later.
export const FILTER_ORDER = {
  sanitize: 100,
  mtls: 200,
  e2ee: 300,
  dynamicSecurity: 400,
  passport: 500,
  breaker: 600,
  headers: 900,
} as const;

export type FilterOrderName = keyof typeof FILTER_ORDER;
