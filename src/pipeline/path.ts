// The one canonical form of a request path, used both for matching and for checking the paths
// written in the config. Envoy may hand us `:path` exactly as the client sent it (Istio normalizes by
// default, but not every mesh does), and the upstream may decode and resolve it; so we match on what
// a decoding, resolving upstream would see, and refuse what is ambiguous:
//
// - percent-decoding: every %XX is decoded (UTF-8), so `/v1/transf%65r` matches `/v1/transfer`;
// - refused: an encoded `/` or `\` (%2F, %5C: upstreams disagree whether it splits a segment),
//   encoded or raw control characters, a raw `\`, a `#`, malformed %-escapes, invalid
//   UTF-8, and anything that does not start with `/` (`*`, absolute-form);
// - dot segments are resolved (RFC 3986 5.2.4, `..` cannot climb above `/`), and empty segments
//   are merged (`//a` → `/a`), so `/public/../admin` is matched as `/admin`;
// - `;` path parameters (matrix parameters, `;jsessionid=x`) are cut from every segment before
//   decoding, as Tomcat and Spring do before they route: `/transfers;x` is `/transfers`,
//   `/a/..;/b` is `/b` (an encoded `%3B` stays a literal part of its segment, as there).
//
// Variants a framework may still route to the same handler (trailing slash, case, trailing dots and
// Spring's `.suffix` match) are not folded into the path: `pathVariant` gives their folded form, and
// the route table (routes.ts) decides with it, per route, whether such a request is decided on the
// route it is a variant of or refused. docs/security.md "Path policy".

export type CanonicalPath =
  | {
      readonly ok: true;
      /** decoded and resolved: what exact, prefix and regex paths are compared with */
      readonly path: string;
      /** the same path as find-my-way must see it: `%`, `?` and `#` re-encoded so it neither splits nor decodes twice */
      readonly routerPath: string;
      /** the path may have a variant form (upper case, a trailing slash or dot, a `.suffix`): see pathVariant */
      readonly variant: boolean;
    }
  | { readonly ok: false; readonly reason: string };

const HEX = /^[0-9A-Fa-f]{2}$/;

export function canonicalizePath(pathname: string): CanonicalPath {
  if (pathname.charCodeAt(0) !== 0x2f) return { ok: false, reason: 'the path does not start with "/"' };
  let hasPercent = false;
  let needsResolve = false;
  let hasMatrix = false;
  let variant = false;
  const length = pathname.length;
  for (let i = 0; i < length; i++) {
    const c = pathname.charCodeAt(i);
    // lower-case letters, most of any path: nothing to note
    if (c >= 0x61 && c <= 0x7a) continue;
    // a raw space is not valid HTTP (Envoy refuses it), but it is what %20 decodes to: let config paths spell it
    if (c < 0x20 || c === 0x7f) return { ok: false, reason: 'the path contains a control character' };
    if (c === 0x5c) return { ok: false, reason: 'the path contains a backslash' };
    if (c === 0x23) return { ok: false, reason: 'the path contains "#"' };
    if (c === 0x25) hasPercent = true;
    else if (c === 0x3b) hasMatrix = true;
    else if (c >= 0x41 && c <= 0x5a) variant = true;
    else if (c === 0x2e) {
      if (i > 0 && pathname.charCodeAt(i - 1) !== 0x2f) variant = true;
    } else if (c === 0x2f) {
      const next = pathname.charCodeAt(i + 1);
      if (next === 0x2f || next === 0x2e) needsResolve = true;
    }
  }
  let path = pathname;
  if (hasMatrix) {
    path = stripMatrixParams(path);
    // `/..;x/` became `/../`, `/a/;x/b` became `/a//b`
    needsResolve = true;
  }
  if (hasPercent) {
    for (let i = path.indexOf('%'); i !== -1; i = path.indexOf('%', i + 1)) {
      const hex = path.slice(i + 1, i + 3);
      if (!HEX.test(hex)) return { ok: false, reason: 'the path has a malformed percent-escape' };
      const byte = parseInt(hex, 16);
      if (byte === 0x2f || byte === 0x5c) return { ok: false, reason: 'the path contains an encoded "/" or "\\"' };
      if (byte < 0x20 || byte === 0x7f) return { ok: false, reason: 'the path contains an encoded control character' };
      // %41-%5A decode to upper case, %2E to a dot that may trail a segment
      if ((byte >= 0x41 && byte <= 0x5a) || byte === 0x2e) variant = true;
    }
    try {
      path = decodeURIComponent(path);
    } catch {
      return { ok: false, reason: 'the path is not valid UTF-8 once percent-decoded' };
    }
    // decoding may have produced `.` segments (%2e) or, via a raw `/` next to a decoded dot, `//.`
    needsResolve = needsResolve || path.includes('/.');
    // non-ASCII letters have case too
    if (!variant && path !== pathname && /[^\x20-\x7e]/.test(path)) variant = path.toLowerCase() !== path;
  }
  if (needsResolve) path = resolveSegments(path);
  if (path.length > 1 && path.charCodeAt(path.length - 1) === 0x2f) variant = true;
  const routerPath = hasPercent && /[%?#]/.test(path) ? path.replace(/[%?#]/g, (ch) => encodeURIComponent(ch)) : path;
  return { ok: true, path, routerPath, variant };
}

/** `/a;x=1/b;y` → `/a/b`: every segment loses what follows its first `;` */
function stripMatrixParams(path: string): string {
  return path.replace(/;[^/]*/g, '');
}

/**
 * A canonical path folded the ways some upstream frameworks fold it before routing: the trailing
 * slash dropped (Express non-strict routing, Spring ≤ 5), trailing dots dropped from every segment
 * (`/transfers.` — Windows, IIS), the last segment's `.suffix` dropped (Spring's suffix pattern
 * match: `/transfers.json`), and case (Express, Spring and IIS can be case-insensitive).
 */
export interface PathVariant {
  /** folded but with its case kept: compared with a route's literal text to tell a case difference */
  readonly path: string;
  /** the same for the router (reserved characters re-encoded), case kept: params keep their case */
  readonly routerPath: string;
  /** `path` lower-cased: the key under which exact paths are indexed for variants */
  readonly key: string;
  /** the canonical path ended with `/` (and is not `/`) */
  readonly trailingSlash: boolean;
  /** trailing dots or a `.suffix` were dropped */
  readonly suffix: boolean;
}

/** The folded form of a canonical path, or undefined when folding changes nothing. */
export function pathVariant(path: string, routerPath: string): PathVariant | undefined {
  const folded = foldPath(path);
  const key = folded.path.toLowerCase();
  if (key === path) return undefined;
  return {
    path: folded.path,
    routerPath: routerPath === path ? folded.path : foldPath(routerPath).path,
    key,
    trailingSlash: folded.trailingSlash,
    suffix: folded.suffix,
  };
}

function foldPath(path: string): { path: string; trailingSlash: boolean; suffix: boolean } {
  if (path === '/') return { path, trailingSlash: false, suffix: false };
  const trailingSlash = path.charCodeAt(path.length - 1) === 0x2f;
  const segments = (trailingSlash ? path.slice(0, -1) : path).split('/');
  let suffix = false;
  for (let i = 1; i < segments.length; i++) {
    let segment = segments[i]!;
    const trimmed = segment.replace(/\.+$/, '');
    // a segment of dots only (`...`) is left as it is: no framework reads it as its neighbour
    if (trimmed !== segment && trimmed !== '') {
      segment = trimmed;
      suffix = true;
    }
    if (i === segments.length - 1) {
      const dot = segment.indexOf('.', 1);
      if (dot > 0) {
        segment = segment.slice(0, dot);
        suffix = true;
      }
    }
    segments[i] = segment;
  }
  const folded = segments.join('/');
  return { path: folded === '' ? '/' : folded, trailingSlash, suffix };
}

/**
 * A path segment or value as filters that key on one compare it (breaker features, scopes read
 * from the path): matrix parameters and trailing dots cut, lower-cased, so `Transfers`,
 * `transfers;x` and `transfers.` are the feature `transfers`.
 */
export function canonicalSegment(value: string): string {
  const semicolon = value.indexOf(';');
  const cut = semicolon === -1 ? value : value.slice(0, semicolon);
  return cut.replace(/\.+$/, '').toLowerCase();
}

/** RFC 3986 remove_dot_segments plus merging of empty segments; keeps a trailing slash. */
function resolveSegments(path: string): string {
  const segments = path.split('/');
  const out: string[] = [];
  let trailingSlash = false;
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i]!;
    const last = i === segments.length - 1;
    if (segment === '' || segment === '.') {
      trailingSlash = last;
    } else if (segment === '..') {
      out.pop();
      trailingSlash = last;
    } else {
      out.push(segment);
      trailingSlash = false;
    }
  }
  if (out.length === 0) return '/';
  return `/${out.join('/')}${trailingSlash ? '/' : ''}`;
}
