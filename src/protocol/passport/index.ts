// The passport protocol core: claims, failure codes, keys and JWKS, issue, verify. No network.
export * from './claims.js';
export * from './codes.js';
export * from './issue.js';
export * from './keys.js';
export * from './verify.js';
export { base64urlDecode, base64urlEncode } from './jws.js';
