import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { AEAD_AES_128_GCM, AEAD_CHACHA20_POLY1305, DEFAULT_SIZE_LIMITS, E2eeKeyring, loadGatewayKey, type GatewayKey } from '../../protocol/e2ee/index.js';
import { AS_WRITTEN, fileReadAtLoad, MAX_BODY_BYTES_LIMIT, schemaPerScope, type FileRead, type FilterConfigScope } from '../../pipeline/filter-config.js';

const AEAD_IDS = { 'aes-128-gcm': AEAD_AES_128_GCM, 'chacha20-poly1305': AEAD_CHACHA20_POLY1305 } as const;

/** Reads a private key file at config load; a problem is a message naming the file. */
function readKeyFile(file: string): FileRead<string> {
  try {
    return { ok: true, value: readFileSync(file, 'utf8') };
  } catch (error) {
    return { ok: false, message: `cannot read private key file ${file}: ${error instanceof Error ? error.message : String(error)}` };
  }
}

/**
 * One gateway key: its RFC 9458 key id and an X25519 private key file (PKCS#8 PEM, or the raw
 * scalar as 64 hex digits), read when the config is loaded and on every reload (how keys rotate).
 */
const gatewayKeyEntryIn = (scope: FilterConfigScope) =>
  z
    .strictObject({
      /** the one-byte key id the app's envelopes name */
      keyId: z.int().min(0).max(255),
      /** a relative path is from the config file's directory, as for every file the config names */
      privateKeyFile: fileReadAtLoad(readKeyFile, scope),
      /** the AEADs this key offers, in the published order */
      aeads: z.array(z.enum(['aes-128-gcm', 'chacha20-poly1305'])).min(1, 'must offer at least one AEAD').default(['aes-128-gcm', 'chacha20-poly1305']),
    })
    .transform((entry, ctx): GatewayKey => {
      try {
        return loadGatewayKey({ keyId: entry.keyId, privateKey: entry.privateKeyFile.value, aeadIds: entry.aeads.map((name) => AEAD_IDS[name]) });
      } catch (error) {
        const why = error instanceof Error ? error.message : String(error);
        ctx.addIssue({ code: 'custom', path: ['privateKeyFile'], message: `private key file ${entry.privateKeyFile.file} is not an X25519 private key (PKCS#8 PEM or 64 hex digits): ${why}` });
        return z.NEVER;
      }
    });

/**
 * The gateway keys, newest (published first) to oldest: several at once while a rotation overlaps
 * (docs/protocol/e2ee.md §2). Built into a keyring at load, so a key id twice is a config error.
 */
export const gatewayKeysIn = (scope: FilterConfigScope) =>
  z
    .array(gatewayKeyEntryIn(scope))
    .min(1, 'needs at least one gateway key: { keyId, privateKeyFile }')
    .transform((keys, ctx) => {
      const twice = keys.find((key, i) => keys.findIndex((other) => other.keyId === key.keyId) !== i);
      if (twice === undefined) return new E2eeKeyring(keys);
      ctx.addIssue({ code: 'custom', message: `key id ${twice.keyId} appears twice: an envelope must name exactly one key` });
      return z.NEVER;
    });

/** What the app binds as the API's authority (docs/protocol/e2ee.md §4): visible ASCII, 1–255 bytes. */
const AUDIENCE = /^[\x21-\x7e]{1,255}$/;

/**
 * A route's `e2ee` entry: request bodies encrypted by the app are decrypted here and the response
 * encrypted back (docs/protocol/e2ee.md §9).
 */
export const e2eeConfigIn = schemaPerScope((scope: FilterConfigScope) =>
  z.strictObject({
    keys: gatewayKeysIn(scope),
    /** the API's public authority as the app binds it, e.g. api.superapp.example (not the internal :authority) */
    audience: z.string().regex(AUDIENCE, 'must be 1-255 visible ASCII characters: the API authority the app binds, e.g. api.superapp.example'),
    /** larger encrypted request bodies → 413 e2ee_too_large */
    maxRequestBytes: z.int().min(1).max(MAX_BODY_BYTES_LIMIT).default(DEFAULT_SIZE_LIMITS.maxRequestBytes),
    /** larger upstream response bodies → 502 e2ee_upstream_too_large */
    maxResponseBytes: z.int().min(1).max(MAX_BODY_BYTES_LIMIT).default(DEFAULT_SIZE_LIMITS.maxResponseBytes),
    /**
     * the device store cannot answer: only `closed` (503 dependency_unavailable) — without the
     * enrolled device key the envelope cannot be opened, so there is nothing to let through
     */
    failureMode: z
      .string()
      .refine((mode) => mode === 'closed', {
        message: 'must be "closed": without the enrolled device key (the store is down) the body cannot be decrypted, so failing open has nothing to let through',
      })
      .default('closed'),
    /**
     * a request that is not e2ee (another Content-Type, or no body): `refuse` → 415
     * e2ee_content_type_invalid; `pass` → it goes through in plaintext both ways
     */
    plaintext: z.enum(['refuse', 'pass']).default('refuse'),
    /**
     * response headers the upstream derives from the body besides the standard ones (ETag,
     * Content-Digest, Repr-Digest, Content-MD5, Digest: always removed), removed from a sealed response
     */
    removeResponseHeaders: z
      .array(z.string().regex(/^[!#$%&'*+.^_`|~0-9a-zA-Z-]+$/, 'must be an HTTP header name').transform((name) => name.toLowerCase()))
      .max(64)
      .default([]),
  }),
);
/** relative paths read as written (the JSON Schema, tests) */
export const e2eeConfig = e2eeConfigIn(AS_WRITTEN);

export type E2eeConfig = z.infer<typeof e2eeConfig>;

/**
 * A route's `e2eeKeys` entry: gatehouse itself answers the route with the key configuration list
 * (application/ohttp-keys) of these keys. List the same keys as the e2ee routes (a YAML anchor).
 */
export const e2eeKeysConfigIn = schemaPerScope((scope: FilterConfigScope) =>
  z.strictObject({
    keys: gatewayKeysIn(scope),
    /** Cache-Control max-age: how long apps may keep the list; keep an old key at least this long after a new one is published */
    maxAgeSeconds: z.int().min(0).max(7 * 24 * 3600).default(3600),
  }),
);
/** relative paths read as written (the JSON Schema, tests) */
export const e2eeKeysConfig = e2eeKeysConfigIn(AS_WRITTEN);

export type E2eeKeysConfig = z.infer<typeof e2eeKeysConfig>;
