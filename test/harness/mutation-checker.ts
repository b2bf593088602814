// Header character validity (source/common/http/header_utility.cc) and the HeaderMutationRules
// checker (source/extensions/filters/common/mutation_rules/mutation_rules.cc).
// Catalogue 5.5, 5.9–5.13, 11.15.
import type { HeaderMutationRules } from '../../src/gen/envoy/config/common/mutation_rules/v3/mutation_rules_pb.js';
import type { StringMatcher } from '../../src/gen/envoy/type/matcher/v3/string_pb.js';

const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const PSEUDO_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/; // nghttp2_check_header_name: no upper case

/** HeaderUtility::headerNameIsValid: token chars; a pseudo-header (leading ':') must be lower case.
 * (An empty name passes Envoy's loop vacuously; the stand-in treats it as invalid — it cannot be
 * put on any wire.) */
export function headerNameIsValid(name: string): boolean {
  if (name.startsWith(':')) return PSEUDO_NAME.test(name.slice(1));
  return TCHAR.test(name);
}

/** HeaderUtility::headerValueIsValid (nghttp2_check_header_value): HTAB, 0x20–0x7e, 0x80–0xff. */
export function headerValueIsValid(bytes: string): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes.charCodeAt(i);
    if (c === 0x09 || (c >= 0x20 && c <= 0x7e) || (c >= 0x80 && c <= 0xff)) continue;
    return false;
  }
  return true;
}

/** HeaderUtility::authorityIsValid (nghttp2_check_authority). */
export function authorityIsValid(bytes: string): boolean {
  return /^[A-Za-z0-9\-._~!$&'()*+,;=:@[\]%]*$/.test(bytes);
}

/** HeaderUtility::schemeIsValid. */
export function schemeIsValid(bytes: string): boolean {
  const s = bytes.toLowerCase();
  return s === 'http' || s === 'https';
}

export type CheckOperation = 'set' | 'append' | 'remove';
export type CheckResult = 'ok' | 'ignore' | 'fail';

const ROUTING_HEADERS = new Set(['host', ':authority', ':method', ':scheme']);

/** Envoy's RE2 `match` is a full match. */
function fullMatch(regex: string, s: string): boolean {
  return new RegExp(`^(?:${regex})$`, 'u').test(s);
}

export class MutationChecker {
  constructor(
    private readonly rules: HeaderMutationRules | undefined,
    private readonly headerPrefix: string = 'x-envoy',
  ) {}

  get disallowIsError(): boolean {
    return this.rules?.disallowIsError ?? false;
  }

  /** Checker::check: disallowed or invalid value → FAIL if disallow_is_error, else IGNORE. */
  check(op: CheckOperation, name: string, value: string): CheckResult {
    const lower = name.toLowerCase();
    if (this.isAllowed(op, lower) && isValidValue(lower, value)) return 'ok';
    return this.disallowIsError ? 'fail' : 'ignore';
  }

  private isAllowed(op: CheckOperation, name: string): boolean {
    // 5.10: never remove ':' headers or host; never append to ':' headers (or host:
    // HeaderUtility::isModifiableHeader), whatever the rules say.
    if (op === 'remove' && (name.startsWith(':') || name === 'host')) return false;
    if (op === 'append' && (name.startsWith(':') || name === 'host')) return false;
    const r = this.rules;
    // 5.13 precedence.
    if (r?.disallowExpression !== undefined && fullMatch(r.disallowExpression.regex, name)) return false;
    if (r?.allowExpression !== undefined && fullMatch(r.allowExpression.regex, name)) return true;
    if (r?.disallowAll === true) return false;
    if (r?.allowAllRouting !== true && ROUTING_HEADERS.has(name)) return false;
    if (r?.disallowSystem === true && name.startsWith(':')) return false;
    if (r?.allowEnvoy !== true && name.startsWith(this.headerPrefix)) return false;
    return true;
  }
}

/** Checker::isValidValue (catalogue 5.11). */
function isValidValue(name: string, value: string): boolean {
  if (!name.startsWith(':') && !headerValueIsValid(value)) return false;
  if ((name === ':authority' || name === 'host') && !authorityIsValid(value)) return false;
  if (name === ':scheme' && !schemeIsValid(value)) return false;
  if (name === ':status') {
    if (!/^[0-9]+$/.test(value)) return false;
    if (Number(value) < 200) return false;
  }
  return true;
}

/** Envoy StringMatcher (exact / prefix / suffix / contains / safe_regex, ignore_case). */
export function stringMatches(m: StringMatcher, s: string): boolean {
  const p = m.matchPattern;
  const ic = m.ignoreCase;
  const a = ic ? s.toLowerCase() : s;
  switch (p.case) {
    case 'exact':
      return a === (ic ? p.value.toLowerCase() : p.value);
    case 'prefix':
      return a.startsWith(ic ? p.value.toLowerCase() : p.value);
    case 'suffix':
      return a.endsWith(ic ? p.value.toLowerCase() : p.value);
    case 'contains':
      return a.includes(ic ? p.value.toLowerCase() : p.value);
    case 'safeRegex':
      return fullMatch(p.value.regex, s);
    case 'custom':
    case undefined:
      return false;
  }
}
