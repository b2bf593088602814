// A route gatehouse answers itself with a document it publishes (the e2ee key configurations, the
// passport JWKS): the answer is built once per config load, every request gets the same one.
import { HEADER } from '../pipeline/headers.js';
import type { Outcome } from '../pipeline/types.js';

/** A filter with only a request-headers phase, which answers synchronously (tests call it directly). */
export interface PublishedDocument {
  onRequestHeaders(): Outcome;
}

export function publishedDocument(contentType: string, body: Buffer, maxAgeSeconds: number): PublishedDocument {
  const published: Outcome = Object.freeze({
    kind: 'respond',
    status: 200,
    headers: { [HEADER.contentType]: contentType, [HEADER.cacheControl]: `public, max-age=${maxAgeSeconds}` },
    body,
  });
  return { onRequestHeaders: (): Outcome => published };
}
