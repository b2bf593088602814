// Strict base64 / base64url codecs with no runtime dependency (no Buffer, no atob), so the same code
// runs in gatehouse and in the app SDK (browsers, React Native). Decoders return undefined instead of
// throwing: every caller turns that into its own stable reason code.

const STANDARD = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const URL_SAFE = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function reverseTable(alphabet: string): Int16Array {
  const table = new Int16Array(128).fill(-1);
  for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = i;
  return table;
}
const STANDARD_REVERSE = reverseTable(STANDARD);
const URL_SAFE_REVERSE = reverseTable(URL_SAFE);

function encode(bytes: Uint8Array, alphabet: string, pad: boolean): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += alphabet[n >>> 18]! + alphabet[(n >>> 12) & 63]! + alphabet[(n >>> 6) & 63]! + alphabet[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += alphabet[n >>> 18]! + alphabet[(n >>> 12) & 63]! + (pad ? '==' : '');
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += alphabet[n >>> 18]! + alphabet[(n >>> 12) & 63]! + alphabet[(n >>> 6) & 63]! + (pad ? '=' : '');
  }
  return out;
}

function decode(text: string, reverse: Int16Array, padding: 'required' | 'forbidden'): Uint8Array | undefined {
  let end = text.length;
  if (padding === 'required') {
    if (end % 4 !== 0) return undefined;
    if (end > 0 && text.charCodeAt(end - 1) === 61) end--;
    if (end > 0 && text.charCodeAt(end - 1) === 61) end--;
  } else if (end % 4 === 1) {
    return undefined;
  }
  const tail = end % 4;
  const out = new Uint8Array(Math.floor(end / 4) * 3 + (tail === 0 ? 0 : tail - 1));
  let o = 0;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? reverse[c]! : -1;
    if (v < 0) return undefined;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >>> bits) & 0xff;
    }
  }
  // Non-canonical encodings (stray low bits in the last character) would give two spellings of the
  // same bytes; refuse them so a value has exactly one form.
  if ((acc & ((1 << bits) - 1)) !== 0) return undefined;
  return out;
}

export function base64Encode(bytes: Uint8Array): string {
  return encode(bytes, STANDARD, true);
}

/** Standard alphabet, padding required (the form RFC 8941 byte sequences use). */
export function base64Decode(text: string): Uint8Array | undefined {
  return decode(text, STANDARD_REVERSE, 'required');
}

export function base64urlEncode(bytes: Uint8Array): string {
  return encode(bytes, URL_SAFE, false);
}

/** URL-safe alphabet, no padding (the form JOSE uses). */
export function base64urlDecode(text: string): Uint8Array | undefined {
  return decode(text, URL_SAFE_REVERSE, 'forbidden');
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

export function utf8(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

/** Decodes UTF-8, returning undefined for invalid sequences rather than substituting U+FFFD. */
export function fromUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    return undefined;
  }
}
