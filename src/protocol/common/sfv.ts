// RFC 8941 Structured Field Values: the subset HTTP Message Signatures (RFC 9421) and Digest Fields
// (RFC 9530) need — dictionaries whose members are items or inner lists, with parameters. Parsing is
// strict and total: any input returns a value or undefined, never throws. Serialisation follows
// RFC 8941 §4.1, which is also how RFC 9421 rebuilds `@signature-params` from the parsed value.
import { base64Decode, base64Encode } from './base64.js';

export type BareItem =
  | { readonly type: 'integer'; readonly value: number }
  | { readonly type: 'decimal'; readonly value: number }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'token'; readonly value: string }
  | { readonly type: 'bytes'; readonly value: Uint8Array }
  | { readonly type: 'boolean'; readonly value: boolean };

/** Parameters keep the order they were sent in (a Map keeps insertion order; a repeated key keeps its first place). */
export type Parameters = ReadonlyMap<string, BareItem>;

export interface Item {
  readonly kind: 'item';
  readonly value: BareItem;
  readonly params: Parameters;
}

export interface InnerList {
  readonly kind: 'inner-list';
  readonly items: readonly Item[];
  readonly params: Parameters;
}

export type Member = Item | InnerList;
export type Dictionary = ReadonlyMap<string, Member>;

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isLcAlpha = (c: number): boolean => c >= 97 && c <= 122;
const isAlpha = (c: number): boolean => (c >= 65 && c <= 90) || isLcAlpha(c);
// Character classes as lookup tables: the verifier parses two dictionaries per request, so this is hot.
function charTable(chars: string): Uint8Array {
  const table = new Uint8Array(128);
  for (let i = 0; i < chars.length; i++) table[chars.charCodeAt(i)] = 1;
  return table;
}
const DIGITS = '0123456789';
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
// RFC 9110 tchar, plus ':' and '/' which RFC 8941 allows inside tokens.
const TOKEN_CHARS = charTable(`!#$%&'*+-.^_\`|~:/${DIGITS}${LOWER}${UPPER}`);
const KEY_CHARS = charTable(`_-.*${DIGITS}${LOWER}`);
const BASE64_TEXT = /^[A-Za-z0-9+/=]*$/;
const PLAIN_STRING = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
const inTable = (table: Uint8Array, c: number): boolean => c < 128 && table[c] === 1;

class Cursor {
  pos = 0;
  constructor(readonly text: string) {}
  done(): boolean {
    return this.pos >= this.text.length;
  }
  peek(): number {
    return this.text.charCodeAt(this.pos);
  }
  skipSpaces(): void {
    while (this.peek() === 32) this.pos++;
  }
  skipOws(): void {
    while (this.peek() === 32 || this.peek() === 9) this.pos++;
  }
}

function parseKey(c: Cursor): string | undefined {
  const first = c.peek();
  if (!(isLcAlpha(first) || first === 42)) return undefined;
  const start = c.pos;
  c.pos++;
  while (inTable(KEY_CHARS, c.peek())) c.pos++;
  return c.text.slice(start, c.pos);
}

function parseNumber(c: Cursor): BareItem | undefined {
  const start = c.pos;
  let sign = 1;
  if (c.peek() === 45) {
    sign = -1;
    c.pos++;
  }
  if (!isDigit(c.peek())) return undefined;
  let isDecimal = false;
  let intDigits = 0;
  let fracDigits = 0;
  while (!c.done()) {
    const ch = c.peek();
    if (isDigit(ch)) {
      if (isDecimal) fracDigits++;
      else intDigits++;
    } else if (ch === 46 && !isDecimal) {
      if (intDigits > 12) return undefined;
      isDecimal = true;
    } else {
      break;
    }
    c.pos++;
    if (!isDecimal && intDigits > 15) return undefined;
  }
  const text = c.text.slice(start, c.pos);
  if (!isDecimal) return { type: 'integer', value: sign * Number(text.slice(sign < 0 ? 1 : 0)) };
  if (fracDigits === 0 || fracDigits > 3) return undefined;
  return { type: 'decimal', value: Number(text) };
}

function parseString(c: Cursor): BareItem | undefined {
  c.pos++; // opening quote
  // Fast path: no escapes before the closing quote.
  const close = c.text.indexOf('"', c.pos);
  if (close >= 0) {
    const plain = c.text.slice(c.pos, close);
    if (PLAIN_STRING.test(plain)) {
      c.pos = close + 1;
      return { type: 'string', value: plain };
    }
  }
  let out = '';
  while (!c.done()) {
    const ch = c.peek();
    c.pos++;
    if (ch === 92) {
      if (c.done()) return undefined;
      const next = c.peek();
      if (next !== 34 && next !== 92) return undefined;
      out += c.text.charAt(c.pos);
      c.pos++;
    } else if (ch === 34) {
      return { type: 'string', value: out };
    } else if (ch < 0x20 || ch > 0x7e) {
      return undefined;
    } else {
      out += c.text.charAt(c.pos - 1);
    }
  }
  return undefined;
}

function parseToken(c: Cursor): BareItem {
  const start = c.pos;
  c.pos++;
  while (inTable(TOKEN_CHARS, c.peek())) c.pos++;
  return { type: 'token', value: c.text.slice(start, c.pos) };
}

function parseBytes(c: Cursor): BareItem | undefined {
  const close = c.text.indexOf(':', c.pos + 1);
  if (close < 0) return undefined;
  const text = c.text.slice(c.pos + 1, close);
  if (!BASE64_TEXT.test(text)) return undefined;
  const decoded = base64Decode(text);
  c.pos = close + 1;
  return decoded === undefined ? undefined : { type: 'bytes', value: decoded };
}

function parseBareItem(c: Cursor): BareItem | undefined {
  const ch = c.peek();
  if (ch === 45 || isDigit(ch)) return parseNumber(c);
  if (ch === 34) return parseString(c);
  if (ch === 42 || isAlpha(ch)) return parseToken(c);
  if (ch === 58) return parseBytes(c);
  if (ch === 63) {
    const v = c.text[c.pos + 1];
    if (v !== '0' && v !== '1') return undefined;
    c.pos += 2;
    return { type: 'boolean', value: v === '1' };
  }
  return undefined;
}

function parseParameters(c: Cursor): Map<string, BareItem> | undefined {
  const params = new Map<string, BareItem>();
  while (c.peek() === 59) {
    c.pos++;
    c.skipSpaces();
    const key = parseKey(c);
    if (key === undefined) return undefined;
    let value: BareItem | undefined = { type: 'boolean', value: true };
    if (c.peek() === 61) {
      c.pos++;
      value = parseBareItem(c);
      if (value === undefined) return undefined;
    }
    params.set(key, value);
  }
  return params;
}

function parseItem(c: Cursor): Item | undefined {
  const value = parseBareItem(c);
  if (value === undefined) return undefined;
  const params = parseParameters(c);
  return params === undefined ? undefined : { kind: 'item', value, params };
}

function parseInnerList(c: Cursor): InnerList | undefined {
  c.pos++; // opening parenthesis
  const items: Item[] = [];
  while (!c.done()) {
    c.skipSpaces();
    if (c.peek() === 41) {
      c.pos++;
      const params = parseParameters(c);
      return params === undefined ? undefined : { kind: 'inner-list', items, params };
    }
    const item = parseItem(c);
    if (item === undefined) return undefined;
    items.push(item);
    const next = c.peek();
    if (next !== 32 && next !== 41) return undefined;
  }
  return undefined;
}

/** Parses an RFC 8941 dictionary field value; undefined when the text is not one. */
export function parseDictionary(text: string): Dictionary | undefined {
  const c = new Cursor(text);
  const dict = new Map<string, Member>();
  c.skipSpaces();
  while (!c.done()) {
    const key = parseKey(c);
    if (key === undefined) return undefined;
    let member: Member | undefined;
    if (c.peek() === 61) {
      c.pos++;
      member = c.peek() === 40 ? parseInnerList(c) : parseItem(c);
    } else {
      const params = parseParameters(c);
      member = params === undefined ? undefined : { kind: 'item', value: { type: 'boolean', value: true }, params };
    }
    if (member === undefined) return undefined;
    dict.set(key, member);
    c.skipOws();
    if (c.done()) return dict;
    if (c.peek() !== 44) return undefined;
    c.pos++;
    c.skipOws();
    if (c.done()) return undefined; // trailing comma
  }
  return dict;
}

export function serializeBareItem(item: BareItem): string {
  switch (item.type) {
    case 'integer':
      return String(item.value);
    case 'decimal': {
      const fixed = item.value.toFixed(3).replace(/0{1,2}$/, '');
      return fixed;
    }
    case 'string':
      // Escaping is rare (component names and our parameters never need it): skip the regex then.
      return item.value.includes('"') || item.value.includes('\\') ? `"${item.value.replace(/[\\"]/g, (m) => `\\${m}`)}"` : `"${item.value}"`;
    case 'token':
      return item.value;
    case 'bytes':
      return `:${base64Encode(item.value)}:`;
    case 'boolean':
      return item.value ? '?1' : '?0';
  }
}

export function serializeParameters(params: Parameters): string {
  let out = '';
  for (const [key, value] of params) {
    out += `;${key}`;
    if (!(value.type === 'boolean' && value.value)) out += `=${serializeBareItem(value)}`;
  }
  return out;
}

export function serializeItem(item: Item): string {
  return serializeBareItem(item.value) + serializeParameters(item.params);
}

export function serializeInnerList(list: InnerList): string {
  return `(${list.items.map(serializeItem).join(' ')})${serializeParameters(list.params)}`;
}

export function serializeMember(member: Member): string {
  return member.kind === 'item' ? serializeItem(member) : serializeInnerList(member);
}

export function serializeDictionary(dict: Dictionary): string {
  const parts: string[] = [];
  for (const [key, member] of dict) {
    if (member.kind === 'item' && member.value.type === 'boolean' && member.value.value) {
      parts.push(key + serializeParameters(member.params));
    } else {
      parts.push(`${key}=${serializeMember(member)}`);
    }
  }
  return parts.join(', ');
}

/** Small constructors so callers can build values without spelling out the tagged shapes. */
export const sf = {
  string: (value: string): BareItem => ({ type: 'string', value }),
  token: (value: string): BareItem => ({ type: 'token', value }),
  integer: (value: number): BareItem => ({ type: 'integer', value }),
  bytes: (value: Uint8Array): BareItem => ({ type: 'bytes', value }),
  item: (value: BareItem, params: Parameters = new Map()): Item => ({ kind: 'item', value, params }),
  innerList: (items: readonly Item[], params: Parameters = new Map()): InnerList => ({ kind: 'inner-list', items, params }),
};
