import { z } from 'zod';

// RFC 9110 token characters: what Envoy accepts as a header name (envoy-behaviours 5.5).
const headerName = z
  .string()
  .regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'must be an HTTP header name (token characters, no ":" pseudo-headers)')
  .transform((s) => s.toLowerCase());
// No NUL, CR, LF or other controls except HTAB: Envoy fails a whole answer that carries one.
const headerValue = z.string().regex(/^[\t\x20-\x7e\x80-\uffff]*$/, 'must not contain control characters');

const editsSchema = z
  .strictObject({
    set: z.record(headerName, headerValue).optional(),
    append: z.record(headerName, headerValue).optional(),
    remove: z.array(headerName).optional(),
  })
  .optional();

export const headersFilterConfig = z.strictObject({
  request: editsSchema,
  response: editsSchema,
});

export type HeadersFilterConfig = z.infer<typeof headersFilterConfig>;
export type HeaderEditsConfig = NonNullable<HeadersFilterConfig['request']>;
