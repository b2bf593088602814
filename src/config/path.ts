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
//   are merged (`//a` → `/a`), so `/public/../admin` is matched as `/admin`.

export type CanonicalPath =
  | {
      readonly ok: true;
      /** decoded and resolved: what exact, prefix and regex paths are compared with */
      readonly path: string;
      /** the same path as find-my-way must see it: `%`, `?` and `#` re-encoded so it neither splits nor decodes twice */
      readonly routerPath: string;
    }
  | { readonly ok: false; readonly reason: string };

const HEX = /^[0-9A-Fa-f]{2}$/;

export function canonicalizePath(pathname: string): CanonicalPath {
  if (pathname.charCodeAt(0) !== 0x2f) return { ok: false, reason: 'the path does not start with "/"' };
  let hasPercent = false;
  let needsResolve = false;
  const length = pathname.length;
  for (let i = 0; i < length; i++) {
    const c = pathname.charCodeAt(i);
    // a raw space is not valid HTTP (Envoy refuses it), but it is what %20 decodes to: let config paths spell it
    if (c < 0x20 || c === 0x7f) return { ok: false, reason: 'the path contains a control character' };
    if (c === 0x5c) return { ok: false, reason: 'the path contains a backslash' };
    if (c === 0x23) return { ok: false, reason: 'the path contains "#"' };
    if (c === 0x25) hasPercent = true;
    else if (c === 0x2f) {
      const next = pathname.charCodeAt(i + 1);
      if (next === 0x2f || next === 0x2e) needsResolve = true;
    }
  }
  let path = pathname;
  if (hasPercent) {
    for (let i = path.indexOf('%'); i !== -1; i = path.indexOf('%', i + 1)) {
      const hex = path.slice(i + 1, i + 3);
      if (!HEX.test(hex)) return { ok: false, reason: 'the path has a malformed percent-escape' };
      const byte = parseInt(hex, 16);
      if (byte === 0x2f || byte === 0x5c) return { ok: false, reason: 'the path contains an encoded "/" or "\\"' };
      if (byte < 0x20 || byte === 0x7f) return { ok: false, reason: 'the path contains an encoded control character' };
    }
    try {
      path = decodeURIComponent(path);
    } catch {
      return { ok: false, reason: 'the path is not valid UTF-8 once percent-decoded' };
    }
    // decoding may have produced `.` segments (%2e) or, via a raw `/` next to a decoded dot, `//.`
    needsResolve = needsResolve || path.includes('/.');
  }
  if (needsResolve) path = resolveSegments(path);
  const routerPath = hasPercent && /[%?#]/.test(path) ? path.replace(/[%?#]/g, (ch) => encodeURIComponent(ch)) : path;
  return { ok: true, path, routerPath };
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
