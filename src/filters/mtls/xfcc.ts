// Envoy's x-forwarded-client-cert (XFCC), parsed strictly: elements separated by `,`, each a list of
// `Key=value` pairs separated by `;`, a value either bare or double-quoted with `\"` and `\\`
// escapes (Envoy quotes Subject always and any value holding `,;="`). Keys: By, Hash, Cert, Chain,
// Subject, URI, DNS (URI and DNS repeat, one per SAN). Anything else is malformed: a header a
// trusted proxy produced never is, so a malformed one is refused rather than guessed at.
import type { PeerCertificate } from '../../pipeline/types.js';

const KNOWN_KEYS = new Set(['by', 'hash', 'cert', 'chain', 'subject', 'uri', 'dns']);
const SHA256_HEX = /^[0-9a-f]{64}$/;

export type XfccResult = { readonly ok: true; readonly certificate: PeerCertificate } | { readonly ok: false; readonly detail: string };

type Pairs = [key: string, value: string][];

/** Split into elements of pairs, honouring quotes; undefined on any syntax error. */
function tokenize(header: string): Pairs[] | string {
  const elements: Pairs[] = [];
  let pairs: Pairs = [];
  let i = 0;
  for (;;) {
    const eq = header.indexOf('=', i);
    if (eq < 0) return 'a pair without "="';
    const key = header.slice(i, eq).trim().toLowerCase();
    if (!KNOWN_KEYS.has(key)) return `unknown key ${JSON.stringify(key.slice(0, 20))}`;
    i = eq + 1;
    let value = '';
    if (header[i] === '"') {
      i++;
      for (;;) {
        if (i >= header.length) return 'an unterminated quoted value';
        const c = header[i]!;
        if (c === '\\') {
          if (i + 1 >= header.length) return 'an unterminated escape';
          value += header[i + 1]!;
          i += 2;
        } else if (c === '"') {
          i++;
          break;
        } else {
          value += c;
          i++;
        }
      }
    } else {
      while (i < header.length && header[i] !== ';' && header[i] !== ',') {
        if (header[i] === '"' || header[i] === '=') return 'a quote or "=" inside a bare value';
        value += header[i]!;
        i++;
      }
      value = value.trim();
    }
    pairs.push([key, value]);
    if (i >= header.length) break;
    const separator = header[i];
    if (separator === ';') i++;
    else if (separator === ',') {
      elements.push(pairs);
      pairs = [];
      i++;
    } else return 'text after a quoted value';
  }
  elements.push(pairs);
  return elements;
}

/**
 * The client certificate described by the **last** element: the one the trusted proxy in front of
 * this listener appended itself. Earlier elements were forwarded from hops gatehouse cannot vouch for.
 */
export function parseXfcc(header: string): XfccResult {
  const elements = tokenize(header);
  if (typeof elements === 'string') return { ok: false, detail: `x-forwarded-client-cert is malformed: ${elements}` };
  const last = elements.at(-1)!;
  const uriSans: string[] = [];
  let subject: string | undefined;
  let sha256: string | undefined;
  for (const [key, value] of last) {
    if (value === '') continue;
    if (key === 'uri') uriSans.push(value);
    else if (key === 'subject') subject = value;
    else if (key === 'hash') {
      // a proxy in between may spell it as openssl prints it (upper case, colons): one form for comparing
      const hex = value.replaceAll(':', '').toLowerCase();
      if (!SHA256_HEX.test(hex)) return { ok: false, detail: 'x-forwarded-client-cert is malformed: Hash is not a SHA-256 hex digest' };
      sha256 = hex;
    }
  }
  return { ok: true, certificate: { uriSans, ...(subject === undefined ? {} : { subject }), ...(sha256 === undefined ? {} : { sha256 }) } };
}
