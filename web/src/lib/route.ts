// Hash routes, so the server only ever serves `/`, `/assets/...` and `/favicon.svg`.

export type Route =
  | { view: 'chat'; id?: string }
  | { view: 'collections'; name?: string }
  | { view: 'server' };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '').replace(/^\/+/, '');
  const [head, ...rest] = path.split('/');
  const arg = rest.length ? safeDecode(rest.join('/')) : undefined;
  switch (head) {
    case 'c':
      return arg ? { view: 'chat', id: arg } : { view: 'chat' };
    case 'collections':
      return arg ? { view: 'collections', name: arg } : { view: 'collections' };
    case 'server':
      return { view: 'server' };
    default:
      return { view: 'chat' };
  }
}

export function routeHash(r: Route): string {
  switch (r.view) {
    case 'chat':
      return r.id ? `#/c/${encodeURIComponent(r.id)}` : '#/';
    case 'collections':
      return r.name ? `#/collections/${encodeURIComponent(r.name)}` : '#/collections';
    case 'server':
      return '#/server';
  }
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
