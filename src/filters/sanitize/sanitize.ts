// `sanitize`: what a client must not send never reaches the upstream. Always on (every route runs
// it; a route or defaults.filters may add to it, never take the built-in part away):
//  - headers reserved for gatehouse and the mesh are removed: x-passport, x-gatehouse-*,
//    x-forwarded-client-cert (unless trusted), and the names and prefixes the config adds;
//  - requests over the header limits are refused (431), a longer path than allowed too (414), and
//    a header value with control characters (400: Envoy's codecs refuse most, this is the backstop).
// Each removal is recorded (header names only, never values) in the access log and the
// gatehouse_filter_actions_total metric. Paths are canonicalised and ambiguous ones refused by the
// router already (src/config/path.ts).
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
  const stripped = (name: string): boolean => {
    if (names.has(name)) return true;
    for (const prefix of prefixes) if (name.startsWith(prefix)) return true;
    return false;
  };

  return (ctx) => {
    if (ctx.path.length > maxPathBytes) return deny('uri_too_long', `path of ${ctx.path.length} bytes > ${maxPathBytes}`);
    let count = 0;
    let bytes = 0;
    let removed: string[] | undefined;
    for (const [name, value] of ctx.requestHeaders.entries()) {
      if (name.charCodeAt(0) === 0x3a) continue; // pseudo-headers: the path is checked above, the rest by Envoy
      count++;
      bytes += name.length + value.length;
      if (value.length > maxHeaderValueBytes) return deny('request_headers_too_large', `header ${name} is ${value.length} bytes > ${maxHeaderValueBytes}`);
      if (CONTROL_CHARACTER.test(value)) return deny('bad_request_headers', `header ${name} has a control character`);
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
