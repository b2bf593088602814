// Value parsers: text → value or a message, shared by the schema and the environment overrides
// (load.ts), and the one compiler of config regexes (used by the schema and the route matcher).
import { setFlagsFromString } from 'node:v8';
import type { HostPort } from '../stores/config.js';
import { DEFAULTS } from './defaults.js';
import type { ListenAddress } from './types.js';

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string };

export const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

export function parseListenAddress(text: string): Parsed<ListenAddress> {
  const bad = (why: string): Parsed<ListenAddress> => ({ ok: false, message: `must be host:port (e.g. 0.0.0.0:9001 or [::]:9001): ${why}, got ${JSON.stringify(text)}` });
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1 || text[close + 1] !== ':') return bad('an IPv6 host needs "]:" before the port');
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!/^[0-9A-Fa-f:.]+$/.test(host) || !host.includes(':')) return bad('not an IPv6 address');
  } else {
    const colon = text.lastIndexOf(':');
    if (colon === -1) return bad('no port');
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host === '') return bad('no host');
    if (host.includes(':')) return bad('an IPv6 host must be in brackets');
    if (!HOSTNAME.test(host)) return bad('not a host name or IPv4 address');
  }
  if (!/^[0-9]{1,5}$/.test(portText)) return bad('the port is not a number');
  const port = Number(portText);
  if (port > 65535) return bad('the port is above 65535');
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return { ok: true, value: { host, port, address } };
}

export function parseOtlpEndpoint(text: string): Parsed<string> {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, message: `must be an http(s) URL, got ${JSON.stringify(text)}` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, message: `must be an http(s) URL, got ${JSON.stringify(text)}` };
  return { ok: true, value: text };
}

/** `host` or `host:port` (IPv6 in brackets), for Redis nodes and sentinels */
export function parseHostPort(text: string, defaultPort: number): Parsed<HostPort> {
  const hasPort = text.startsWith('[') ? text.includes(']:') : text.includes(':');
  const withPort = hasPort ? text : `${text}:${defaultPort}`;
  const parsed = parseListenAddress(withPort);
  if (!parsed.ok) return { ok: false, message: parsed.message.replace('must be host:port', `must be host or host:port (port default ${defaultPort})`) };
  return { ok: true, value: { host: parsed.value.host, port: parsed.value.port } };
}

export interface RedisUrl {
  readonly host: string;
  readonly port: number;
  readonly db: number;
  readonly username?: string;
  readonly tls: boolean;
}

/** redis://[user@]host[:port][/db] or rediss:// (TLS); a password in the URL is refused: it would sit in the config file */
export function parseRedisUrl(text: string): Parsed<RedisUrl> {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, message: `must be a redis:// or rediss:// URL, got ${JSON.stringify(text)}` };
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return { ok: false, message: `must be a redis:// or rediss:// URL, got ${JSON.stringify(text)}` };
  if (url.password !== '') return { ok: false, message: 'must not carry a password (it would sit in the config file): use passwordFile or passwordEnv' };
  if (url.search !== '' || url.hash !== '') return { ok: false, message: 'must not have a query or fragment; put options in the stores.redis fields' };
  const dbText = url.pathname.replace(/^\//, '');
  if (dbText !== '' && !/^[0-9]{1,5}$/.test(dbText)) return { ok: false, message: `the path must be a database number (e.g. redis://host:6379/0), got ${JSON.stringify(url.pathname)}` };
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') return { ok: false, message: 'has no host' };
  return {
    ok: true,
    value: {
      host,
      port: url.port === '' ? DEFAULTS.redisPort : Number(url.port),
      db: dbText === '' ? 0 : Number(dbText),
      ...(url.username === '' ? {} : { username: decodeURIComponent(url.username) }),
      tls: url.protocol === 'rediss:',
    },
  };
}

// Config regexes run on V8's linear-time engine (the `l` flag), as Envoy runs its RE2: a path or
// header a client sends can never make matching backtrack exponentially ((a+)+ on "aaaa…b" takes
// microseconds, not hours). The flag only gates that engine; it is read when a RegExp is built.
setFlagsFromString('--enable-experimental-regexp-engine');
/** V8's flag for its linear-time engine (not in ECMAScript, hence unknown to the linter). */
const LINEAR = 'l';
const LINEAR_REGEXP_AVAILABLE = ((): boolean => {
  try {
    return new RegExp('a', LINEAR).flags.includes(LINEAR);
  } catch {
    return false;
  }
})();

/**
 * Compile a config regex once, for linear-time matching; a syntax error, or a construct only a
 * backtracking engine can run (back-references, lookahead, lookbehind), becomes the message.
 * Matching is full-string (anchored).
 */
export function compileRegex(source: string): Parsed<RegExp> {
  if (!LINEAR_REGEXP_AVAILABLE) {
    return { ok: false, message: `regular expression ${JSON.stringify(source)} refused: this Node.js cannot match in linear time (V8's experimental regexp engine is missing)` };
  }
  try {
    new RegExp(`^(?:${source})$`); // syntax first, so a syntax error gets its own message
  } catch (err) {
    const detail = err instanceof Error ? err.message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '') : String(err);
    return { ok: false, message: `invalid regular expression ${JSON.stringify(source)}: ${detail}` };
  }
  try {
    // Newer V8 (Node 22) runs some lookbehinds in linear time; RE2 has none, so they stay refused
    // whatever the Node version: a config means the same here as in Envoy.
    if (hasLookaround(source)) throw new Error('lookaround');
    return { ok: true, value: new RegExp(`^(?:${source})$`, LINEAR) };
  } catch {
    return {
      ok: false,
      message: `regular expression ${JSON.stringify(source)} needs back-references or lookahead/lookbehind, which cannot match in linear time: gatehouse, like Envoy's RE2, does not support them`,
    };
  }
}

/** Whether a (syntactically valid) regex has a lookahead or lookbehind group outside a character class. */
export function hasLookaround(source: string): boolean {
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') {
      i++; // an escaped character is a literal, whatever it is
    } else if (inClass) {
      if (c === ']') inClass = false;
    } else if (c === '[') {
      inClass = true;
    } else if (c === '(' && /^\(\?(?:=|!|<=|<!)/.test(source.slice(i, i + 4))) {
      return true;
    }
  }
  return false;
}