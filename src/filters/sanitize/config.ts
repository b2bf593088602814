import { z } from 'zod';
import { GATEHOUSE_HEADER_PREFIX, HEADER } from '../../pipeline/headers.js';

// Names Envoy's default mutation rules will not let gatehouse remove (envoy-behaviours 5.9, 5.10):
// configuring them would be a silent no-op, so the schema refuses them and says what does work.
function unremovable(name: string): string | undefined {
  if (name.startsWith(':') || name === 'host') return 'Envoy never lets a filter remove pseudo-headers or host';
  if (name.startsWith('x-envoy')) {
    return 'Envoy ignores ext_proc edits of x-envoy* headers; Envoy itself strips its internal x-envoy-* headers from external requests when use_remote_address is true (Istio ingress default)';
  }
  return undefined;
}

const headerName = z
  .string()
  .regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'must be an HTTP header name (token characters)')
  .transform((s) => s.toLowerCase())
  .superRefine((name, ctx) => {
    const why = unremovable(name);
    if (why) ctx.addIssue({ code: 'custom', message: `cannot strip ${JSON.stringify(name)}: ${why}` });
  });

const headerPrefix = z
  .string()
  .min(3, 'must be at least 3 characters (a prefix this short would strip ordinary headers)')
  .regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'must be the start of an HTTP header name (token characters)')
  .transform((s) => s.toLowerCase())
  .superRefine((prefix, ctx) => {
    const why = unremovable(prefix);
    if (why) ctx.addIssue({ code: 'custom', message: `cannot strip ${JSON.stringify(prefix)}*: ${why}` });
  });

export const SANITIZE_DEFAULT_LIMITS = {
  /** Envoy's own default max_headers_count is 100 */
  maxHeaders: 100,
  /** sum over headers of name + value bytes; Envoy's own default cap is 60 KiB */
  maxHeaderListBytes: 32_768,
  maxHeaderValueBytes: 8_192,
  /** `:path` with its query */
  maxPathBytes: 4_096,
} as const;

export const sanitizeConfig = z.strictObject({
  /** more names to strip, beside the built-in reserved ones (BUILT_IN_STRIPPED) */
  stripHeaders: z.array(headerName).default([]),
  /** more prefixes to strip, beside `x-gatehouse-` */
  stripPrefixes: z.array(headerPrefix).default([]),
  /** keep a client's x-forwarded-client-cert: only where the mesh itself sets it for this listener */
  trustForwardedClientCert: z.boolean().default(false),
  limits: z
    .strictObject({
      maxHeaders: z.int().min(1).max(1_000).default(SANITIZE_DEFAULT_LIMITS.maxHeaders),
      maxHeaderListBytes: z.int().min(1).max(1_048_576).default(SANITIZE_DEFAULT_LIMITS.maxHeaderListBytes),
      maxHeaderValueBytes: z.int().min(1).max(1_048_576).default(SANITIZE_DEFAULT_LIMITS.maxHeaderValueBytes),
      maxPathBytes: z.int().min(1).max(1_048_576).default(SANITIZE_DEFAULT_LIMITS.maxPathBytes),
    })
    .prefault({}),
});

export type SanitizeConfig = z.infer<typeof sanitizeConfig>;

/** Stripped on every route whatever the config says: headers only gatehouse or the mesh may set. */
export const BUILT_IN_STRIPPED = {
  names: [HEADER.passport] as readonly string[],
  prefixes: [GATEHOUSE_HEADER_PREFIX] as readonly string[],
  /** unless trustForwardedClientCert */
  forwardedClientCert: HEADER.forwardedClientCert,
} as const;
