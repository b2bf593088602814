// The `signed` filter's config for a test world: its credential issuer and the issuer's public key
// inline, as a YAML flow mapping to put after `- signed: `. One place for the tests that run
// signed routes through the Envoy stand-in.
import { exportJWK } from 'jose';
import { CREDENTIAL_ISSUER, type World } from '../../src/protocol/signing/test-support.js';

/** `{ issuer: "...", issuerKeys: [<jwk>]<more> }`; `more` is extra fields, e.g. `, failureMode: open` */
export async function signedFilterConfig(world: World, more = ''): Promise<string> {
  const jwk = { ...(await exportJWK(world.issuerKey.publicKey)), kid: world.issuerKey.kid };
  return `{ issuer: "${CREDENTIAL_ISSUER}", issuerKeys: [${JSON.stringify(jwk)}]${more} }`;
}
