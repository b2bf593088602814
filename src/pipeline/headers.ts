// Header names gatehouse itself reads or writes (one place for each), a read-once header map, and
// the edit list filters build and the adapters translate into Envoy mutations.

export const HEADER = {
  requestId: 'x-request-id',
  traceparent: 'traceparent',
  tracestate: 'tracestate',
  /** on every denial: the stable reason code */
  reason: 'x-gatehouse-reason',
  /** on every denial: the decision id a client can quote (gatehouse's own, never the client's x-request-id) */
  decisionId: 'x-gatehouse-decision-id',
  contentType: 'content-type',
  contentLength: 'content-length',
  transferEncoding: 'transfer-encoding',
  /** the identity token gatehouse hands upstream (docs/protocol/passport.md): never from a client */
  passport: 'x-passport',
  /** Envoy's client-certificate header (XFCC): trusted only where the mesh sets it */
  forwardedClientCert: 'x-forwarded-client-cert',
  /** to the upstream: the id of the client the mtls filter authorized (never from a client: x-gatehouse-*) */
  client: 'x-gatehouse-client',
  /** on a 503 circuit_open: seconds until the breaker lets a probe through */
  retryAfter: 'retry-after',
  /** on a 401 signing denial: the scheme and the code (RFC 9110 §11.6.1) */
  wwwAuthenticate: 'www-authenticate',
  /** on a signing denial: gatehouse's clock, so an app can correct its own */
  date: 'date',
  /** on the documents gatehouse publishes (key configurations, JWKS) */
  cacheControl: 'cache-control',
  /** on a 405: the methods the endpoint takes */
  allow: 'allow',
  /** the app's login token (Bearer), read by the enrollment endpoint */
  authorization: 'authorization',
  /** ext_authz: Envoy says whether it cut the body at max_request_bytes */
  authzPartialBody: 'x-envoy-auth-partial-body',
} as const;

/**
 * Response headers computed over the body: on an e2ee route they would describe the plaintext beside
 * the sealed body (a digest of a short answer can be brute-forced back to it), so they are removed
 * from every sealed response (docs/protocol/e2ee.md §9). Content-Length is recomputed instead.
 */
export const BODY_DERIVED_RESPONSE_HEADERS = ['etag', 'content-digest', 'repr-digest', 'content-md5', 'digest'] as const;

/** Every header name gatehouse itself writes starts with this; a client never may. */
export const GATEHOUSE_HEADER_PREFIX = 'x-gatehouse-';

/**
 * Request headers as Envoy sent them: lower-case names, repeated headers kept in order. Filters read
 * the request as the client sent it: their edits (HeaderEdits) go to Envoy, not into this map, so a
 * filter that needs to know what another removed reads that filter's config (checkRoute), never
 * a header an earlier filter was meant to strip.
 *
 * Built once per message on the hot path, so it allocates little: a scan over every header
 * (`size`, `nameAt`, `valueAt`) makes no objects, and a name seen once keeps its value without an
 * array around it (a generator of [name, value] pairs was a fifth of a request's garbage).
 */
export class HeaderMap {
  /** names and values in the order they came */
  private readonly names: string[] = [];
  private readonly values: string[] = [];
  /** each name's value, or every value of a repeated name */
  private readonly byName = new Map<string, string | string[]>();

  constructor(entries: Iterable<readonly [string, string]> = []) {
    for (const [name, value] of entries) this.add(name, value);
  }

  add(name: string, value: string): void {
    const key = name.toLowerCase();
    this.names.push(key);
    this.values.push(value);
    const existing = this.byName.get(key);
    if (existing === undefined) this.byName.set(key, value);
    else if (typeof existing === 'string') this.byName.set(key, [existing, value]);
    else existing.push(value);
  }

  /** the first value, as most single-valued headers are read */
  get(name: string): string | undefined {
    const found = this.byName.get(name);
    return typeof found === 'string' ? found : found?.[0];
  }

  getAll(name: string): readonly string[] {
    const found = this.byName.get(name);
    return found === undefined ? NO_VALUES : typeof found === 'string' ? [found] : found;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** how many header lines (a repeated name counts once per line) */
  get size(): number {
    return this.names.length;
  }

  /** the i-th line's name (0 ≤ i < size), in the order the headers came */
  nameAt(index: number): string {
    return this.names[index]!;
  }

  /** the i-th line's value */
  valueAt(index: number): string {
    return this.values[index]!;
  }

  /** every line as [name, value], in the order the headers came (for code off the hot path) */
  *entries(): IterableIterator<[string, string]> {
    for (let i = 0; i < this.names.length; i++) yield [this.names[i]!, this.values[i]!];
  }
}

const NO_VALUES: readonly string[] = Object.freeze([]);

export interface HeaderSet {
  readonly name: string;
  readonly value: string;
  /** true: add another value; false: replace every existing value */
  readonly append: boolean;
}

/**
 * Edits to one header map, in the order Envoy applies them: all removals, then sets in order
 * (envoy-behaviours 5.1). Names are lower-cased here so a filter cannot send a name Envoy would
 * treat differently.
 */
export class HeaderEdits {
  readonly removals: string[] = [];
  readonly sets: HeaderSet[] = [];

  set(name: string, value: string): this {
    this.sets.push({ name: name.toLowerCase(), value, append: false });
    return this;
  }

  append(name: string, value: string): this {
    this.sets.push({ name: name.toLowerCase(), value, append: true });
    return this;
  }

  remove(name: string): this {
    const key = name.toLowerCase();
    this.removals.push(key);
    // a later remove cancels an earlier set of the same header
    for (let i = this.sets.length - 1; i >= 0; i--) if (this.sets[i]!.name === key) this.sets.splice(i, 1);
    return this;
  }

  get isEmpty(): boolean {
    return this.removals.length === 0 && this.sets.length === 0;
  }

  /** take the edits made so far (the adapter sends them with one answer) and start afresh */
  drain(): { removals: string[]; sets: HeaderSet[] } {
    const out = { removals: this.removals.splice(0), sets: this.sets.splice(0) };
    return out;
  }
}
