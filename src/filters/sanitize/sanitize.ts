// `sanitize`: what a client must not send never reaches the upstream. Always on (every route runs
// it; a route or defaults.filters may add to it, never take the built-in part away):
//  - headers reserved for gatehouse and the mesh are removed: x-passport, x-gatehouse-*,
//    x-forwarded-client-cert (unless trusted), and the names and prefixes the config adds; a name is
//    compared after folding `_` to `-` (Envoy forwards underscores by default, and CGI/WSGI/PHP-style
//    upstreams read `x_passport` as X-Passport), and an underscore spelling is removed even where
//    the hyphen spelling is trusted (the mesh never writes it);
//  - requests over the header limits are refused (431), a longer path than allowed too (414): all
//    limits count UTF-8 bytes, not characters; a header value, pseudo-headers included, with
//    control characters is refused (400: Envoy's codecs refuse most, this is the backstop).
// Each removal is recorded (header names only, never values) in the access log and the
// gatehouse_filter_actions_total metric. Paths are canonicalised and ambiguous ones refused by the
// router already (src/pipeline/path.ts).
import { CONTINUE, type FilterDefinition, type Outcome, type RequestContext } from '../../pipeline/types.js';
import { FILTER_ORDER } from '../../pipeline/order.js';
import { BUILT_IN_STRIPPED, sanitizeConfig, type SanitizeConfig } from './config.js';

export const SANITIZE_ACTION = { removedHeaders: 'removed_headers' } as const;

// HTAB is allowed; every other control character is not (RFC 9110 §5.5).
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTER = /[\x00-\x08\x0a-\x1f\x7f]/;

const deny = (reason: 'request_headers_too_large' | 'bad_request_headers' | 'uri_too_long', detail: string): Outcome => ({ kind: 'deny', reason, detail });

export function compileSanitize(config: SanitizeConfig): (ctx: RequestContext) => Outcome {
  const names = new Set([...BUILT_IN_STRIPPED.names, ...config.stripHeaders]);
  if (!config.trustForwardedClientCert) names.add(BUILT_IN_STRIPPED.forwardedClientCert);
  const prefixes = [...BUILT_IN_STRIPPED.prefixes, ...config.stripPrefixes];
  const { maxHeaders, maxHeaderListBytes, maxHeaderValueBytes, maxPathBytes } = config.limits;
  const reserved = new Set([...names, BUILT_IN_STRIPPED.forwardedClientCert].map(foldUnderscores));
  const stripped = (name: string): boolean => {
    if (names.has(name)) return true;
    for (const prefix of prefixes) if (name.startsWith(prefix)) return true;
    if (!name.includes('_')) return false;
    const folded = foldUnderscores(name);
    if (reserved.has(folded)) return true;
    for (const prefix of prefixes) if (folded.startsWith(foldUnderscores(prefix))) return true;
    return false;
  };

  return (ctx) => {
    const pathBytes = utf8Bytes(ctx.path);
    if (pathBytes > maxPathBytes) return deny('uri_too_long', `path of ${pathBytes} bytes > ${maxPathBytes}`);
    let count = 0;
    let bytes = 0;
    let removed: string[] | undefined;
    const headers = ctx.requestHeaders;
    for (let i = 0; i < headers.size; i++) {
      const name = headers.nameAt(i);
      const value = headers.valueAt(i);
      if (CONTROL_CHARACTER.test(value)) return deny('bad_request_headers', `header ${name} has a control character`);
      if (name.charCodeAt(0) === 0x3a) continue; // pseudo-headers: not counted (the path has its own limit above)
      count++;
      const valueBytes = utf8Bytes(value);
      bytes += name.length + valueBytes;
      if (valueBytes > maxHeaderValueBytes) return deny('request_headers_too_large', `header ${name} is ${valueBytes} bytes > ${maxHeaderValueBytes}`);
      if (stripped(name) && removed?.includes(name) !== true) (removed ??= []).push(name);
    }
    if (count > maxHeaders) return deny('request_headers_too_large', `${count} headers > ${maxHeaders}`);
    if (bytes > maxHeaderListBytes) return deny('request_headers_too_large', `${bytes} header bytes > ${maxHeaderListBytes}`);
    if (removed) {
      for (const name of removed) ctx.requestEdits.remove(name);
      ctx.recordAction({ filter: 'sanitize', action: SANITIZE_ACTION.removedHeaders, items: removed });
    }
    return CONTINUE;
  };
}

/** `x_passport` → `x-passport` */
function foldUnderscores(name: string): string {
  return name.replaceAll('_', '-');
}

/** UTF-8 length; an ASCII-only string (the common case) is its own length */
function utf8Bytes(value: string): number {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(value) ? value.length : Buffer.byteLength(value, 'utf8');
}

export const sanitizeFilter: FilterDefinition<typeof sanitizeConfig> = {
  name: 'sanitize',
  order: FILTER_ORDER.sanitize,
  configSchema: sanitizeConfig,
  alwaysOn: true,
  needs: () => ({}),
  create(config) {
    const check = compileSanitize(config);
    return { onRequestHeaders: check };
  },
};
