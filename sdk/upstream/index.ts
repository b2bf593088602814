// The upstream SDK: verifyPassport() with a JWKS cache, and middleware for node:http, Express, Fastify.
export { createJwksCache, httpJwksFetcher, type FetchJwks, type JwksCache, type JwksCacheOptions, type KeyLookup } from './jwks.js';
export {
  passportExpress, passportFastify, passportRequestListener, refusalFor, verifyRequestPassport,
  type PassportMiddlewareOptions, type WithPassport,
} from './middleware.js';
export { createPassportVerifier, type PassportVerifier, type PassportVerifierOptions } from './verifier.js';
export { PASSPORT_FAILURES, PASSPORT_HEADER, type PassportClaims, type PassportFailureCode, type PassportVerdict } from '../../src/protocol/passport/index.js';
