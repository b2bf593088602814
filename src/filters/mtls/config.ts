import { z } from 'zod';

/** A route's `mtls` entry: who may call it is decided by the client registry (clients.ts). */
export const mtlsConfig = z.strictObject({
  /** false: a request without a client certificate passes (audited as `anonymous`); one with a certificate is still checked */
  required: z.boolean().default(true),
  /** every one of these must be among the client's scopes */
  scopes: z.array(z.string().regex(/^[\x21-\x7e]{1,128}$/, 'must be 1-128 visible ASCII characters')).default([]),
  /**
   * true: the listener sits behind a proxy that terminates the client's TLS and sets
   * x-forwarded-client-cert; read the client certificate from that header, not from the connection.
   * Requires sanitize's trustForwardedClientCert on the same route.
   */
  trustForwardedClientCert: z.boolean().default(false),
});

export type MtlsConfig = z.infer<typeof mtlsConfig>;
