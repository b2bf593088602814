// An ordered header map with Envoy's semantics, as far as the ext_proc / ext_authz stand-ins need
// them. Values are "byte strings": every char is one byte (latin1), exactly what Envoy carries in
// `raw_value` and what an HTTP/1.1 codec puts on the wire.
//
// Envoy semantics modelled (source/common/http/header_map_impl.cc):
// * keys are lower-cased;
// * pseudo-headers (`:x`) always iterate before regular headers;
// * `addCopy` on an Envoy *inline* header that already exists appends to it with ',' (no space),
//   on any other header it adds a separate entry (catalogue 5.3);
// * `setCopy` drops every existing value and leaves one;
// * byteSize() = sum of key and value lengths (HeaderMapImpl::byteSize).

export type HeaderPair = [name: string, value: string];
export type MapKind = 'request' | 'response' | 'request-trailers' | 'response-trailers';

// Envoy's inline headers (envoy/http/header_map.h INLINE_* lists). Only these are comma-joined by
// addCopy. Custom inline headers registered by other extensions are not modelled.
const INLINE_REQ_RESP = [
  'connection', 'content-type', 'x-envoy-decorator-operation', 'keep-alive', 'proxy-connection',
  'proxy-status', 'x-request-id', 'transfer-encoding', 'upgrade', 'via', 'content-length',
  'x-envoy-attempt-count',
];
const INLINE_REQ = [
  'x-client-trace-id', 'x-envoy-downstream-service-cluster', 'x-envoy-downstream-service-node',
  'x-envoy-external-address', 'x-envoy-force-trace', 'x-envoy-hedge-on-per-try-timeout',
  'x-envoy-internal', 'x-envoy-ip-tags', 'x-envoy-original-url', 'x-envoy-retry-on',
  'x-envoy-retry-grpc-on', 'x-envoy-retriable-status-codes', 'x-envoy-retriable-header-names',
  'x-envoy-is-timeout-retry', 'x-envoy-upstream-alt-stat-name',
  'x-envoy-upstream-rq-timeout-alt-response', 'expect', 'x-forwarded-client-cert',
  'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'grpc-timeout', ':authority',
  ':method', ':path', ':protocol', ':scheme', 'te', 'user-agent',
  'x-envoy-expected-rq-timeout-ms', 'x-envoy-max-retries', 'x-envoy-upstream-rq-timeout-ms',
  'x-envoy-upstream-rq-per-try-timeout-ms', 'x-envoy-upstream-stream-duration-ms',
];
const INLINE_RESP = [
  'date', 'x-envoy-degraded', 'x-envoy-immediate-health-check-fail', 'x-envoy-ratelimited',
  'x-envoy-upstream-canary', 'x-envoy-upstream-healthchecked-cluster', 'location', 'server',
  ':status', 'x-envoy-upstream-service-time', 'x-envoy-overloaded',
];
const INLINE_RESP_TRAILERS = ['grpc-status', 'grpc-message'];

const INLINE: Record<MapKind, ReadonlySet<string>> = {
  request: new Set([...INLINE_REQ_RESP, ...INLINE_REQ]),
  response: new Set([...INLINE_REQ_RESP, ...INLINE_RESP]),
  'request-trailers': new Set<string>(),
  'response-trailers': new Set(INLINE_RESP_TRAILERS),
};

/** UTF-8 text → byte string. */
export function toBytes(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}
/** Byte string → UTF-8 text (what a client decoding as UTF-8 sees). */
export function fromBytes(bytes: string): string {
  return Buffer.from(bytes, 'latin1').toString('utf8');
}

export class HeaderMap {
  private entries: HeaderPair[] = [];
  constructor(readonly kind: MapKind, pairs: readonly HeaderPair[] = []) {
    for (const [k, v] of pairs) this.add(k, v);
  }

  static clone(m: HeaderMap): HeaderMap {
    const c = new HeaderMap(m.kind);
    c.entries = m.entries.map(([k, v]) => [k, v]);
    return c;
  }

  pairs(): HeaderPair[] {
    return this.entries.map(([k, v]) => [k, v]);
  }
  get size(): number {
    return this.entries.length;
  }
  byteSize(): number {
    let n = 0;
    for (const [k, v] of this.entries) n += k.length + v.length;
    return n;
  }
  has(key: string): boolean {
    const k = key.toLowerCase();
    return this.entries.some(([n]) => n === k);
  }
  get(key: string): string | undefined {
    const k = key.toLowerCase();
    return this.entries.find(([n]) => n === k)?.[1];
  }
  getAll(key: string): string[] {
    const k = key.toLowerCase();
    return this.entries.filter(([n]) => n === k).map(([, v]) => v);
  }
  remove(key: string): void {
    const k = key.toLowerCase();
    this.entries = this.entries.filter(([n]) => n !== k);
  }
  /** HeaderMap::setCopy: one value, replacing all existing ones (kept in the first one's place). */
  set(key: string, value: string): void {
    const k = key.toLowerCase();
    const i = this.entries.findIndex(([n]) => n === k);
    if (i < 0) {
      this.insert(k, value);
      return;
    }
    this.entries[i] = [k, value];
    this.entries = this.entries.filter(([n], j) => n !== k || j === i);
  }
  /** HeaderMap::addCopy: comma-append for an existing inline header, else a new entry. */
  add(key: string, value: string): void {
    const k = key.toLowerCase();
    if (INLINE[this.kind].has(k)) {
      const i = this.entries.findIndex(([n]) => n === k);
      const cur = i >= 0 ? this.entries[i] : undefined;
      if (cur !== undefined) {
        cur[1] = cur[1].length === 0 ? value : `${cur[1]},${value}`;
        return;
      }
    }
    this.insert(k, value);
  }
  /** Always a separate entry (e.g. Envoy's `appendCopy` of non-inline, or `addReferenceKey`). */
  addEntry(key: string, value: string): void {
    this.insert(key.toLowerCase(), value);
  }
  private insert(k: string, value: string): void {
    if (k.startsWith(':')) {
      // Pseudo-headers go after the last pseudo-header, before regular headers.
      let i = 0;
      while (i < this.entries.length && this.entries[i]![0].startsWith(':')) i++;
      this.entries.splice(i, 0, [k, value]);
    } else {
      this.entries.push([k, value]);
    }
  }
}
