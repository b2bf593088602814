// The credential issuer's key manifest: one file, named by both the `issuance` filter (which signs
// credentials with its active key) and the `signed` filter (which trusts the public half of every key
// in it), so the keys a route verifies with are exactly the keys gatehouse issues with. The format is
// the passport key manifest's (docs/protocol/passport.md §4.2):
//   { "keys": [ { "kid": "2026-11-a", "status": "active", "file": "2026-11-a.pem" },
//               { "kid": "2026-10-a", "status": "published", "file": "2026-10-a.pem" } ] }
// `active` signs (a PKCS#8 private key), `published` only verifies (the next key before it signs, the
// previous one while its credentials live out their ≤ 10 minutes; a public-key PEM is enough).
import { loadKeyring, PassportKeyError, type PassportKeyring } from '../passport/keys.js';

export type CredentialKeyring = PassportKeyring;

/** the keyring, or a message naming the file and field (the shape a filter config's file reader answers) */
export type KeyringRead = { readonly ok: true; readonly value: CredentialKeyring } | { readonly ok: false; readonly message: string };

/** Reads the manifest and its PEM files at config load; a problem names the file and the field. */
export function readCredentialKeyring(file: string): KeyringRead {
  try {
    return { ok: true, value: loadKeyring(file) };
  } catch (error) {
    if (error instanceof PassportKeyError) {
      return { ok: false, message: `credential issuer keys: ${error.file}${error.field === undefined ? '' : ` ${error.field}`}: ${error.problem}` };
    }
    return { ok: false, message: `credential issuer keys: ${file}: ${error instanceof Error ? error.message : String(error)}` };
  }
}
