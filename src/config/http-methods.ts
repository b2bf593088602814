// The HTTP method names a route may list: the IANA HTTP Method Registry (RFC 9110's eight, PATCH,
// QUERY, WebDAV's and the rest). A name outside it is almost always a typo (`GTE`), and a route
// listing it would silently never match; the loader refuses it and suggests the closest name.
// Hyphenated registry names (BASELINE-CONTROL, VERSION-CONTROL, ...) are left out: route methods
// are letters only. PRI is HTTP/2's connection preface, never a request's method.
export const HTTP_METHODS: ReadonlySet<string> = new Set([
  'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'QUERY',
  'ACL', 'BIND', 'CHECKIN', 'CHECKOUT', 'COPY', 'LABEL', 'LINK', 'LOCK', 'MERGE', 'MKACTIVITY',
  'MKCALENDAR', 'MKCOL', 'MKREDIRECTREF', 'MKWORKSPACE', 'MOVE', 'ORDERPATCH', 'PROPFIND',
  'PROPPATCH', 'REBIND', 'REPORT', 'SEARCH', 'UNBIND', 'UNCHECKOUT', 'UNLINK', 'UNLOCK', 'UPDATE',
  'UPDATEREDIRECTREF',
]);

/** The config error for a method name outside the registry, with the nearest known name if one is close. */
export function unknownMethodMessage(method: string): string {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const known of HTTP_METHODS) {
    const d = editDistance(method, known);
    if (d < bestDistance) {
      best = known;
      bestDistance = d;
    }
  }
  const hint = best !== undefined && bestDistance <= 2 ? `; did you mean ${best}?` : '';
  return `${method} is not an HTTP method (IANA HTTP Method Registry): a route listing it would never match${hint}`;
}

/** Levenshtein distance with adjacent transpositions (GTE → GET is 1). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
