'use strict';
// Viaduct dashboard: a single page reading the REST API next to it and refreshing itself.
(() => {
  const REFRESH_MS = 4000;
  // The API lives next to the dashboard: <basePath>dashboard/ → <basePath>api/.
  const API = (() => {
    const path = location.pathname;
    const at = path.lastIndexOf('/dashboard');
    return (at >= 0 ? path.slice(0, at + 1) : '/') + 'api/';
  })();
  const KINDS = {
    routers: { title: 'Routers', one: 'router' },
    services: { title: 'Services', one: 'service' },
    middlewares: { title: 'Middlewares', one: 'middleware' },
  };
  // Kinds each protocol has (UDP has no middlewares), as `/api/<protocol>/<kind>`.
  const PROTOCOLS = {
    http: { title: 'HTTP', kinds: ['routers', 'services', 'middlewares'] },
    tcp: { title: 'TCP', kinds: ['routers', 'services', 'middlewares'] },
    udp: { title: 'UDP', kinds: ['routers', 'services'] },
  };
  const STATUS_FILTERS = [['', 'All'], ['enabled', 'Success'], ['warning', 'Warnings'], ['disabled', 'Errors']];
  const STATUS_LABEL = { enabled: 'Success', warning: 'Warning', disabled: 'Error' };

  const main = document.getElementById('main');
  const banner = document.getElementById('banner');
  const live = document.getElementById('live');
  const liveText = document.getElementById('live-text');
  const PAGE = 100;
  const filters = { search: '', status: '', sortBy: '', direction: 'asc', limit: PAGE };
  let generation = 0;
  // The protocol of the page shown: links between objects stay within it.
  let protocol = 'http';

  // Elements are built with the DOM API, never from HTML strings: names and rules come
  // from configuration and must not be interpreted as markup.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? '' : value);
    }
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      el.append(child instanceof Node ? child : String(child));
    }
    return el;
  }

  async function request(path) {
    const response = await fetch(API + path, { headers: { Accept: 'application/json' } });
    if (!response.ok) {
      const error = new Error(`${response.status} on ${path}`);
      error.status = response.status;
      throw error;
    }
    return response;
  }

  const api = async (path) => (await request(path)).json();

  const qualify = (name, provider) => (!name || name.includes('@') || !provider ? name : `${name}@${provider}`);
  const link = (kind, name) => `#/${protocol}/${kind}/${encodeURIComponent(name)}`;
  const badge = (status) => h('span', { class: `badge ${status}` }, STATUS_LABEL[status] || status);

  function route() {
    const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
    const known = PROTOCOLS[parts[0]];
    if (known && known.kinds.includes(parts[1])) {
      return parts.length > 2
        ? { protocol: parts[0], view: 'detail', kind: parts[1], name: parts.slice(2).join('/') }
        : { protocol: parts[0], view: 'list', kind: parts[1] };
    }
    return { protocol: 'http', view: 'overview' };
  }

  function setNav(current) {
    for (const a of document.querySelectorAll('[data-nav]')) {
      a.classList.toggle('active', a.dataset.nav === current);
    }
  }

  function setHealth(ok) {
    banner.hidden = ok;
    if (!ok) banner.textContent = 'The API is not answering; showing the last data received.';
    live.classList.toggle('stale', !ok);
    liveText.textContent = ok ? 'Live' : 'Offline';
  }

  // ---- Overview --------------------------------------------------------------------------

  function statCard(title, counts, href) {
    const ok = counts.total - counts.warnings - counts.errors;
    const bar = h('div', { class: 'bar' });
    for (const [cls, n] of [['ok', ok], ['warn', counts.warnings], ['err', counts.errors]]) {
      if (!n) continue;
      const seg = h('span', { class: cls });
      seg.style.width = `${(100 * n) / counts.total}%`;
      bar.append(seg);
    }
    const body = [
      h('div', { class: 'card-title' }, h('span', {}, title), h('span', { class: 'total' }, counts.total)),
      bar,
      h('div', { class: 'legend' },
        h('span', {}, h('i', { class: 'dot ok' }), 'Success ', h('b', {}, ok)),
        h('span', {}, h('i', { class: 'dot warn' }), 'Warnings ', h('b', {}, counts.warnings)),
        h('span', {}, h('i', { class: 'dot err' }), 'Errors ', h('b', {}, counts.errors))),
    ];
    if (href) {
      // HTTP cards are named by kind alone (`routers`), the others by protocol and kind (`tcp-routers`).
      const [, proto] = href.split('/');
      const stat = proto === 'http' ? title.toLowerCase() : `${proto}-${title.toLowerCase()}`;
      return h('a', { class: 'panel card', href, 'data-stat': stat }, body);
    }
    // Protocols without objects stay compact: a count, no empty bar.
    return h('div', { class: 'panel card mini' }, counts.total ? body : body[0]);
  }

  async function renderOverview() {
    const [overview, entryPoints] = await Promise.all([api('overview'), api('entrypoints')]);
    const features = overview.features || {};
    return [
      h('div', { class: 'page-head' }, h('h1', {}, 'Overview')),
      h('section', { class: 'section' }, h('h2', {}, 'Entry points'),
        h('div', { class: 'grid grid-4 eps', id: 'entrypoints' }, entryPoints.map((ep) =>
          h('div', { class: 'panel card ep' }, h('span', { class: 'name' }, ep.name),
            h('span', { class: 'addr' }, ep.address))))),
      h('section', { class: 'section' }, h('h2', {}, 'HTTP'),
        h('div', { class: 'grid grid-3' },
          statCard('Routers', overview.http.routers, '#/http/routers'),
          statCard('Services', overview.http.services, '#/http/services'),
          statCard('Middlewares', overview.http.middlewares, '#/http/middlewares'))),
      h('section', { class: 'section two' },
        h('div', {}, h('h2', {}, 'TCP'), h('div', { class: 'grid grid-3' },
          statCard('Routers', overview.tcp.routers, '#/tcp/routers'),
          statCard('Services', overview.tcp.services, '#/tcp/services'),
          statCard('Middlewares', overview.tcp.middlewares, '#/tcp/middlewares'))),
        h('div', {}, h('h2', {}, 'UDP'), h('div', { class: 'grid grid-3' },
          statCard('Routers', overview.udp.routers, '#/udp/routers'),
          statCard('Services', overview.udp.services, '#/udp/services')))),
      h('section', { class: 'section two' },
        h('div', {}, h('h2', {}, 'Features'), h('div', { class: 'panel card chips' },
          h('span', { class: features.tracing ? 'chip' : 'chip off' }, `Tracing: ${features.tracing || 'off'}`),
          h('span', { class: features.metrics ? 'chip' : 'chip off' }, `Metrics: ${features.metrics || 'off'}`),
          h('span', { class: features.accessLog ? 'chip' : 'chip off' }, `Access log: ${features.accessLog ? 'on' : 'off'}`))),
        h('div', {}, h('h2', {}, 'Providers'), h('div', { class: 'panel card chips' },
          (overview.providers || []).length ? overview.providers.map((p) => h('span', { class: 'chip' }, p))
            : h('span', { class: 'muted' }, 'None')))),
    ];
  }

  // ---- Lists -----------------------------------------------------------------------------

  const COLUMNS = {
    routers: [
      ['Status', (o) => badge(o.status), 'status-cell', 'status'],
      ['Name', (o) => h('a', { class: 'name', href: link('routers', o.name) }, o.name), 'name-cell', 'name'],
      ['Rule', (o) => h('span', { class: 'rule' }, o.rule), 'rule-cell', 'rule'],
      ['Entry points', (o) => (o.using || []).join(', '), null, 'entryPoints'],
      ['Service', (o) => o.service, null, 'service'],
      ['Provider', (o) => o.provider, null, 'provider'],
      ['Priority', (o) => o.priorityStr, null, 'priority'],
    ],
    services: [
      ['Status', (o) => badge(o.status), 'status-cell', 'status'],
      ['Name', (o) => h('a', { class: 'name', href: link('services', o.name) }, o.name), 'name-cell', 'name'],
      ['Type', (o) => o.type || 'internal', null, 'type'],
      ['Servers', (o) => (o.loadBalancer ? serverSummary(o) : '—'), null, 'servers'],
      ['Provider', (o) => o.provider, null, 'provider'],
    ],
    middlewares: [
      ['Status', (o) => badge(o.status), 'status-cell', 'status'],
      ['Name', (o) => h('a', { class: 'name', href: link('middlewares', o.name) }, o.name), 'name-cell', 'name'],
      ['Type', (o) => o.type, null, 'type'],
      ['Provider', (o) => o.provider, null, 'provider'],
    ],
  };

  function serverSummary(service) {
    const statuses = Object.values(service.serverStatus || {});
    const total = (service.loadBalancer.servers || []).length;
    // UDP servers have no health: only their number is known.
    if (!statuses.length && protocol === 'udp') return String(total);
    const up = statuses.length ? statuses.filter((s) => s === 'UP').length : total;
    return `${up}/${total} up`;
  }

  // A column header sorts by its column (the API's sortBy); a second click reverses.
  function header(title, key) {
    const current = (filters.sortBy || 'name') === key;
    const sort = current ? (filters.direction === 'desc' ? 'descending' : 'ascending') : 'none';
    return h('th', { 'aria-sort': sort }, h('button', {
      type: 'button', class: 'sort', 'data-sort': key,
      onclick: () => {
        filters.direction = current && filters.direction === 'asc' ? 'desc' : 'asc';
        filters.sortBy = key;
        refresh(true);
      },
    }, title, h('span', { class: 'arrow-sort', 'aria-hidden': 'true' }, current ? (filters.direction === 'desc' ? '▼' : '▲') : '')));
  }

  function listRows(kind, items, more) {
    if (!items.length) {
      return h('div', { class: 'empty', id: 'list-empty' }, `No ${KINDS[kind].title.toLowerCase()} match.`);
    }
    const columns = COLUMNS[kind];
    const table = h('table', { class: 'list', id: 'list' },
      h('thead', {}, h('tr', {}, columns.map(([title, , , key]) => header(title, key)))),
      h('tbody', {}, items.map((item) => h('tr', {
        'data-name': item.name,
        onclick: () => { location.hash = link(kind, item.name); },
      }, columns.map(([title, cell, cls]) => h('td', { 'data-label': cls ? null : title, class: cls || 'meta-cell' }, cell(item)))))));
    if (!more) return table;
    return [table, h('div', { class: 'more' }, h('button', {
      type: 'button', id: 'show-more',
      onclick: () => { filters.limit += PAGE; refresh(true); },
    }, `Show ${PAGE} more`))];
  }

  // The first `limit` matches; `more` says whether the API has a next page.
  async function fetchList(kind) {
    const query = new URLSearchParams();
    if (filters.search) query.set('search', filters.search);
    if (filters.status) query.set('status', filters.status);
    if (filters.sortBy) query.set('sortBy', filters.sortBy);
    if (filters.direction === 'desc') query.set('direction', 'desc');
    query.set('per_page', String(filters.limit));
    const response = await request(`${protocol}/${kind}?${query}`);
    const more = (response.headers.get('X-Next-Page') || '1') !== '1';
    return { items: await response.json(), more };
  }

  async function renderList(kind, refreshOnly) {
    const { items, more } = await fetchList(kind);
    const count = `${items.length}${more ? '+' : ''} ${items.length === 1 ? KINDS[kind].one : kind}`;
    const existing = document.getElementById('list-area');
    const listed = `${protocol}/${kind}`;
    // A refresh replaces only the rows: the search box keeps its focus and caret.
    if (refreshOnly && existing && existing.dataset.kind === listed) {
      existing.replaceChildren(...[listRows(kind, items, more)].flat());
      document.getElementById('list-count').textContent = count;
      return null;
    }
    let debounce;
    const search = h('input', {
      id: 'search', type: 'search', placeholder: `Search ${kind} by name${kind === 'routers' ? ' or rule' : ''}`,
      value: filters.search, 'aria-label': 'Search', autocomplete: 'off',
      oninput: (event) => {
        clearTimeout(debounce);
        debounce = setTimeout(() => {
          filters.search = event.target.value.trim();
          filters.limit = PAGE;
          refresh(true);
        }, 150);
      },
    });
    const segmented = h('div', { class: 'segmented', role: 'group', 'aria-label': 'Status' },
      STATUS_FILTERS.map(([value, label]) => h('button', {
        type: 'button', 'data-status': value || 'all', class: filters.status === value ? 'active' : null,
        onclick: (event) => {
          filters.status = value;
          filters.limit = PAGE;
          for (const b of event.currentTarget.parentNode.children) b.classList.toggle('active', b === event.currentTarget);
          refresh(true);
        },
      }, label)));
    return [
      h('div', { class: 'page-head' }, h('h1', {}, `${PROTOCOLS[protocol].title} ${KINDS[kind].title}`),
        h('span', { class: 'sub', id: 'list-count' }, count), siblings(kind)),
      h('div', { class: 'toolbar' }, h('div', { class: 'search' }, search), segmented),
      h('div', { class: 'panel', id: 'list-area', 'data-kind': listed }, listRows(kind, items, more)),
    ];
  }

  // TCP and UDP pages have no tabs of their own: each list links to its siblings.
  function siblings(kind) {
    if (protocol === 'http') return null;
    return h('nav', { class: 'kinds', 'aria-label': PROTOCOLS[protocol].title },
      PROTOCOLS[protocol].kinds.map((k) => h('a', { href: `#/${protocol}/${k}`, class: k === kind ? 'active' : null }, KINDS[k].title)));
  }

  // ---- Details ---------------------------------------------------------------------------

  function problems(object) {
    if (!object.error || !object.error.length) return null;
    return h('div', { class: `panel errors section ${object.status === 'warning' ? 'warn' : ''}`, id: 'errors' },
      h('strong', {}, object.status === 'warning' ? 'Warnings' : 'Errors'),
      h('ul', {}, object.error.map((e) => h('li', {}, e))));
  }

  function rawConfig(object, open) {
    return h('details', { class: 'panel raw section', open }, h('summary', {}, 'Configuration (JSON)'),
      h('pre', { class: 'config' }, JSON.stringify(object, null, 2)));
  }

  function step(kind, number, value, details, attrs) {
    return h('div', Object.assign({ class: 'step' }, attrs || {}),
      h('div', { class: 'rail', 'aria-hidden': 'true' }, h('span', { class: 'n' }, number)),
      h('div', { class: 'body' }, h('div', { class: 'kind' }, kind),
        h('div', { class: 'stage' }, h('div', { class: 'value' }, value), details)));
  }

  function serversList(service) {
    const servers = (service.loadBalancer && service.loadBalancer.servers) || [];
    const statuses = service.serverStatus || {};
    return h('ul', { class: 'servers' }, servers.map((s) =>
      h('li', { 'data-server': s.url }, h('span', {}, s.url), badge(statuses[s.url] || 'UP'))));
  }

  function childServices(service) {
    const spec = service.weighted || service.highestRandomWeight;
    if (spec) return (spec.services || []).map((c) => [c.name, `weight ${c.weight || 1}`]);
    if (service.mirroring) {
      return [[service.mirroring.service, 'main']].concat(
        (service.mirroring.mirrors || []).map((m) => [m.name, `mirror ${m.percent || 0}%`]));
    }
    if (service.failover) return [[service.failover.service, 'main'], [service.failover.fallback, 'fallback']];
    return [];
  }

  async function renderRouter(name) {
    const router = await api(`http/routers/${encodeURIComponent(name)}`);
    const middlewares = await Promise.all((router.middlewares || []).map((m) =>
      api(`http/middlewares/${encodeURIComponent(m)}`).catch(() => ({ name: m, status: 'disabled', missing: true }))));
    const serviceName = qualify(router.service, router.provider);
    const service = await api(`http/services/${encodeURIComponent(serviceName)}`)
      .catch(() => ({ name: serviceName, status: 'disabled', missing: true }));

    let n = 0;
    const steps = [];
    const declared = router.entryPoints || [];
    steps.push(step('Entry points', ++n, declared.join(', ') || '—',
      h('div', { class: 'detail' }, declared.filter((ep) => !(router.using || []).includes(ep))
        .map((ep) => `${ep}: missing`).join(', ')), { 'data-step': 'entrypoints' }));
    steps.push(step('Router', ++n, h('code', {}, router.rule),
      h('div', { class: 'detail' }, `priority ${router.priorityStr}`), { 'data-step': 'router', class: 'step accent' }));
    steps.push(step('TLS', ++n, router.tls ? 'TLS' : 'No TLS',
      router.tls ? h('div', { class: 'detail' }, `options ${router.tls.options || 'default'}`,
        router.tls.certResolver ? `, resolver ${router.tls.certResolver}` : '') : null, { 'data-step': 'tls' }));
    for (const m of middlewares) {
      steps.push(step('Middleware', ++n, h('a', { href: link('middlewares', m.name) }, m.name),
        h('div', { class: 'detail' }, m.missing ? 'not found' : m.type, ' ', m.status !== 'enabled' ? badge(m.status) : null),
        { 'data-step': 'middleware', class: m.status === 'disabled' ? 'step bad' : 'step' }));
    }
    steps.push(step('Service', ++n, h('a', { href: link('services', service.name) }, service.name),
      h('div', { class: 'detail' }, service.missing ? 'not found' : service.type || 'internal'),
      { 'data-step': 'service', class: service.status === 'disabled' ? 'step bad' : 'step' }));
    const children = childServices(service);
    if (service.loadBalancer) {
      steps.push(step('Servers', ++n, serverSummary(service), serversList(service), { 'data-step': 'servers' }));
    } else if (children.length) {
      steps.push(step('Services', ++n, `${children.length} children`, h('ul', { class: 'servers' },
        children.map(([child, role]) => h('li', {}, h('a', { href: link('services', qualify(child, service.provider)) }, child),
          h('span', { class: 'muted' }, role)))), { 'data-step': 'servers' }));
    }
    const flow = h('div', { class: 'panel flow', id: 'flow' }, steps);

    return [
      h('div', { class: 'crumbs' }, h('a', { href: '#/http/routers' }, 'HTTP Routers'), ' / '),
      h('div', { class: 'page-head' }, h('h1', { id: 'detail-name' }, router.name), badge(router.status),
        h('span', { class: 'sub' }, `provider ${router.provider}`)),
      problems(router),
      h('section', { class: 'section' }, h('h2', {}, 'Request path'), flow),
      rawConfig(router),
    ];
  }

  async function renderService(name) {
    const service = await api(`http/services/${encodeURIComponent(name)}`);
    const props = [['Type', service.type || 'internal'], ['Provider', service.provider]];
    if (service.loadBalancer) {
      props.push(['Strategy', service.loadBalancer.strategy || 'wrr'],
        ['Pass Host header', String(service.loadBalancer.passHostHeader !== false)]);
      if (service.loadBalancer.healthCheck) {
        const hc = service.loadBalancer.healthCheck;
        props.push(['Health check', `${hc.path || '/'} every ${hc.interval || '30s'}`]);
      }
    }
    const children = childServices(service);
    return [
      h('div', { class: 'crumbs' }, h('a', { href: '#/http/services' }, 'HTTP Services'), ' / '),
      h('div', { class: 'page-head' }, h('h1', { id: 'detail-name' }, service.name), badge(service.status)),
      problems(service),
      h('div', { class: 'two section' },
        h('div', {}, h('h2', {}, 'Details'), h('dl', { class: 'panel props' }, props.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))),
        h('div', {}, h('h2', {}, 'Used by'), h('div', { class: 'panel card' }, (service.usedBy || []).length
          ? h('ul', { class: 'servers' }, service.usedBy.map((r) => h('li', {}, h('a', { href: link('routers', r) }, r))))
          : h('span', { class: 'muted' }, 'No router uses this service.')))),
      service.loadBalancer ? h('section', { class: 'section' }, h('h2', {}, 'Servers'),
        h('div', { class: 'panel card', id: 'servers' }, serversList(service))) : null,
      children.length ? h('section', { class: 'section' }, h('h2', {}, 'Services'),
        h('div', { class: 'panel card' }, h('ul', { class: 'servers' }, children.map(([child, role]) =>
          h('li', {}, h('a', { href: link('services', qualify(child, service.provider)) }, child), h('span', { class: 'muted' }, role)))))) : null,
      rawConfig(service),
    ];
  }

  async function renderMiddleware(name) {
    const middleware = await api(`http/middlewares/${encodeURIComponent(name)}`);
    return [
      h('div', { class: 'crumbs' }, h('a', { href: '#/http/middlewares' }, 'HTTP Middlewares'), ' / '),
      h('div', { class: 'page-head' }, h('h1', { id: 'detail-name' }, middleware.name), badge(middleware.status),
        h('span', { class: 'sub' }, middleware.type)),
      problems(middleware),
      h('div', { class: 'two section' },
        h('div', {}, h('h2', {}, 'Details'), h('dl', { class: 'panel props' },
          h('dt', {}, 'Type'), h('dd', {}, middleware.type), h('dt', {}, 'Provider'), h('dd', {}, middleware.provider))),
        h('div', {}, h('h2', {}, 'Used by'), h('div', { class: 'panel card' }, (middleware.usedBy || []).length
          ? h('ul', { class: 'servers' }, middleware.usedBy.map((r) => h('li', {}, h('a', { href: link('routers', r) }, r))))
          : h('span', { class: 'muted' }, 'No router uses this middleware.')))),
      rawConfig(middleware, true),
    ];
  }

  // A TCP or UDP object: its status, problems, relations and configuration.
  async function renderStreamObject(kind, name) {
    const object = await api(`${protocol}/${kind}/${encodeURIComponent(name)}`);
    const title = `${PROTOCOLS[protocol].title} ${KINDS[kind].title}`;
    const related = kind === 'routers'
      ? [['Service', object.service], ['Entry points', (object.using || []).join(', ')]]
      : [['Type', object.type], ['Used by', (object.usedBy || []).join(', ')]];
    return [
      h('div', { class: 'crumbs' }, h('a', { href: `#/${protocol}/${kind}` }, title), ' / '),
      h('div', { class: 'page-head' }, h('h1', { id: 'detail-name' }, object.name), badge(object.status),
        h('span', { class: 'sub' }, `provider ${object.provider}`)),
      problems(object),
      h('dl', { class: 'panel props section' }, related.filter(([, v]) => v).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
      rawConfig(object, true),
    ];
  }

  // ---- Rendering loop --------------------------------------------------------------------

  async function refresh(rowsOnly) {
    const current = route();
    const mine = ++generation;
    protocol = current.protocol;
    setNav(current.view === 'overview' ? 'overview' : protocol === 'http' ? current.kind : protocol);
    try {
      let content;
      if (current.view === 'overview') content = await renderOverview();
      else if (current.view === 'list') content = await renderList(current.kind, rowsOnly);
      else if (protocol !== 'http') content = await renderStreamObject(current.kind, current.name);
      else if (current.kind === 'routers') content = await renderRouter(current.name);
      else if (current.kind === 'services') content = await renderService(current.name);
      else content = await renderMiddleware(current.name);
      setHealth(true);
      if (mine !== generation || content === null) return;
      // Keep an open JSON panel open across refreshes.
      const open = main.querySelector('details[open]') !== null;
      main.replaceChildren(...[content].flat().filter(Boolean));
      if (open) main.querySelector('details')?.setAttribute('open', '');
    } catch (error) {
      if (mine !== generation) return;
      if (error.status === 404) {
        main.replaceChildren(h('div', { class: 'empty' }, `This ${KINDS[current.kind]?.one || 'object'} no longer exists. `,
          h('a', { href: current.kind ? `#/${protocol}/${current.kind}` : '#/' }, 'Back to the list')));
        setHealth(true);
      } else {
        setHealth(false);
      }
    }
  }

  async function loadVersion() {
    try {
      const version = await api('version');
      document.getElementById('version').textContent = `v${version.Version}`;
      if (version.dashboardName) {
        document.getElementById('brand-name').textContent = version.dashboardName;
        document.title = version.dashboardName;
      }
    } catch (_) { /* the banner reports an unreachable API */ }
  }

  window.addEventListener('hashchange', () => {
    const next = route();
    if (next.view === 'list' && document.getElementById('list-area')?.dataset.kind !== `${next.protocol}/${next.kind}`) {
      Object.assign(filters, { search: '', status: '', sortBy: '', direction: 'asc', limit: PAGE });
    }
    refresh(false);
  });
  setInterval(() => { if (!document.hidden) refresh(true); }, REFRESH_MS);
  loadVersion();
  refresh(false);
})();
