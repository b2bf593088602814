// RFC 9421 §2.5 signature base for requests (and @status, so the RFC's response vector can be checked).
// Pure: the SDK signs the exact string the verifier rebuilds.
import { serializeInnerList, type InnerList } from '../common/sfv.js';

/** The framework-neutral view of an HTTP message that components are read from. */
export interface MessageView {
  readonly method?: string;
  /** The :authority / Host value as sent. */
  readonly authority?: string;
  /** Raw path, percent-encoding preserved, without the query. */
  readonly path?: string;
  /** Raw query without the leading '?'; '' when there is none. */
  readonly query?: string;
  readonly status?: number;
  /** Lower-case field name → field value (several lines already combined with ", "). */
  readonly header: (name: string) => string | undefined;
}

export type ComponentResult = { ok: true; value: string } | { ok: false; reason: 'absent' | 'unsupported' | 'invalid' };

const isOws = (first: number, last: number): boolean => first === 32 || first === 9 || last === 32 || last === 9;

/** The value a covered component contributes to the base (RFC 9421 §2.1–2.2). */
export function componentValue(id: string, message: MessageView): ComponentResult {
  let value: string | undefined;
  switch (id) {
    case '@method':
      value = message.method;
      break;
    case '@authority':
      value = message.authority?.toLowerCase();
      break;
    case '@path':
      value = message.path === undefined ? undefined : message.path === '' ? '/' : message.path;
      break;
    case '@query':
      value = message.query === undefined ? undefined : `?${message.query}`;
      break;
    case '@status':
      value = message.status === undefined ? undefined : String(message.status);
      break;
    default:
      if (id.startsWith('@')) return { ok: false, reason: 'unsupported' };
      value = message.header(id);
      // Field values lose leading and trailing spaces and tabs (RFC 9421 §2.1); the test first keeps
      // the common case (nothing to trim) free of a regex.
      if (value !== undefined && value.length > 0 && isOws(value.charCodeAt(0), value.charCodeAt(value.length - 1))) value = value.replace(/^[ \t]+|[ \t]+$/g, '');
  }
  if (value === undefined) return { ok: false, reason: 'absent' };
  // A line break would let one component forge the next line of the base.
  if (value.includes('\n') || value.includes('\r')) return { ok: false, reason: 'invalid' };
  return { ok: true, value };
}

export type BaseResult = { ok: true; base: string } | { ok: false; component: string; reason: 'absent' | 'unsupported' | 'invalid' };

/**
 * Builds the signature base for the covered components of `signatureParams` (an inner list of plain
 * string items), ending with the `@signature-params` line serialised from the parsed value, so
 * parameter order is exactly the order they were sent in.
 */
export function buildSignatureBase(signatureParams: InnerList, message: MessageView): BaseResult {
  let base = '';
  for (const item of signatureParams.items) {
    if (item.value.type !== 'string' || item.params.size > 0) return { ok: false, component: '?', reason: 'unsupported' };
    const id = item.value.value;
    const value = componentValue(id, message);
    if (!value.ok) return { ok: false, component: id, reason: value.reason };
    base += `"${id}": ${value.value}\n`;
  }
  base += `"@signature-params": ${serializeInnerList(signatureParams)}`;
  return { ok: true, base };
}
