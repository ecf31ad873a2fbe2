// Catalog: the tenant's Backstage software catalog as a Luigi micro-app, read through portico's
// same-origin, session-authenticated proxy at /backstage/api/catalog/ (portico narrows every read to the
// tenant's namespaces; an entity outside them answers 404, like one that does not exist).
//
// What it calls, all GET (the catalog routes portico scopes; see src/backstage/scope/plan.rs):
//   /entities/by-query    the list (limit, orderField, filter, fullTextFilterTerm/Fields, fields) and its
//                         pages (cursor + limit); also one lookup of an entity's related entities
//   /entity-facets        the options of the kind, owner, lifecycle and tag filters
//   /entities/by-name/…   one entity
//
// State lives in the URL (?q=&kind=&owner=&lifecycle=&tag=&sort=&pageSize=&page= for the list,
// ?entity=<ref> for an entity page), so reload, back and forward behave and a link can be shared: in the
// Luigi shell, the shell's URL as node parameters (/home/catalog?~entity=component:acme/payments-api);
// opened on its own, this view's URL. See "Routes and where they are kept" below.
//
// Everything from the catalog is untrusted text: it is only ever set with textContent, and only http(s)
// and mailto links are made clickable.
//
// Texts: every text the app writes itself is a `catalog.*` key of /shell/i18n/<locale>.json
// (web/shell/i18n.js), in the shell's language (`LuigiClient.uxManager().getCurrentLocale()`; opened on
// its own, the browser's). index.html's static texts carry `data-i18n` keys; nothing is shown before the
// texts are in. What the catalog says (names, kinds, types, lifecycles, descriptions) stays as Backstage
// has it; the portal apps' labels in the shell's context come translated by the server. Messages in an
// error answer are shown as the server wrote them (in English, marked so), inside a translated sentence.
(function () {
  'use strict';

  var API = '/backstage/api/catalog';
  var PAGE_SIZES = [10, 20, 50, 100];
  var DEFAULT_PAGE_SIZE = 20;
  var MAX_PAGE_SIZE = 100;
  var SEARCH_DEBOUNCE_MS = 250;
  var LUIGI_INIT_WAIT_MS = 1500;
  // What the list shows; everything else stays in Backstage.
  var LIST_FIELDS = [
    'kind', 'metadata.name', 'metadata.namespace', 'metadata.title', 'metadata.description', 'metadata.tags',
    'spec.type', 'spec.lifecycle', 'spec.owner', 'spec.profile.displayName', 'relations'
  ].join(',');
  // Backstage's full-text filter searches only the sort field unless told which fields to search.
  var SEARCH_FIELDS = [
    'metadata.name', 'metadata.title', 'metadata.description', 'spec.type', 'spec.profile.displayName'
  ].join(',');
  var SORTS = { 'name-asc': 'metadata.name,asc', 'name-desc': 'metadata.name,desc' };
  // `any`: the key of the text of the filter's "any" option.
  var FILTERS = [
    { key: 'kind', field: 'kind', select: 'f-kind', any: 'catalog.filters.anyKind' },
    { key: 'owner', field: 'relations.ownedBy', select: 'f-owner', any: 'catalog.filters.anyOwner' },
    { key: 'lifecycle', field: 'spec.lifecycle', select: 'f-lifecycle', any: 'catalog.filters.anyLifecycle' },
    { key: 'tag', field: 'metadata.tags', select: 'f-tag', any: 'catalog.filters.anyTag' }
  ];
  var LIST_KEYS = ['q', 'kind', 'owner', 'lifecycle', 'tag', 'sort', 'pageSize', 'page'];
  // The relation types an entity page names (`catalog.relations.<type>`), in the order they are shown;
  // any other type reads as Backstage names it.
  var RELATIONS = [
    'ownedBy', 'ownerOf', 'partOf', 'hasPart', 'providesApi', 'apiProvidedBy', 'consumesApi', 'apiConsumedBy',
    'dependsOn', 'dependencyOf', 'memberOf', 'hasMember', 'parentOf', 'childOf'
  ];
  var KIND_LABELS = { api: 'API' };

  // ---------------------------------------------------------------------------------------------
  // Small helpers

  function $(id) { return document.getElementById(id); }

  /** An element with attributes (`text` sets textContent, `on<event>` adds a listener) and children. */
  function h(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === undefined || value === null || value === false) return;
      if (name === 'text') node.textContent = value;
      else if (name === 'className') node.className = value;
      else if (name.slice(0, 2) === 'on') node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? '' : value);
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined || child === false) return;
      node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    });
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  // ---------------------------------------------------------------------------------------------
  // Texts (web/shell/i18n.js)

  var i18n = null; // the translator of the view's language, once loaded; nothing is drawn before
  var texts = Promise.resolve(false); // the language changes, one after the other

  /** The text of `key`, `{name}` placeholders filled from `vars`. */
  function t(key, vars) { return i18n ? i18n.t(key, vars) : key; }

  /** A number as the language writes it. */
  function num(value) { return Number(value).toLocaleString(i18n ? i18n.locale : 'en'); }

  /** The text of `key` + One/Other for `count` things, with `{count}` (and `vars`) filled in. */
  function counted(key, count, vars) {
    return t(i18n.plural(key, count), Object.assign({ count: num(count) }, vars || {}));
  }

  /**
   * The text of `key` as nodes, each `{placeholder}` replaced by its value in `vars`: a string as text,
   * a node as itself.
   */
  function compose(key, vars) {
    var out = document.createDocumentFragment();
    t(key).split(/(\{[A-Za-z0-9_]+\})/).forEach(function (piece) {
      var name = /^\{([A-Za-z0-9_]+)\}$/.exec(piece);
      var value = name && vars && Object.prototype.hasOwnProperty.call(vars, name[1]) ? vars[name[1]] : undefined;
      if (value === undefined) {
        if (piece) out.appendChild(document.createTextNode(piece));
      } else {
        out.appendChild(value instanceof Node ? value : document.createTextNode(String(value)));
      }
    });
    return out;
  }

  /** A message the server wrote (in English), as a sentence of its own or a part of one. */
  function serverText(message, sentence) {
    var text = sentence ? capitalise(message) : String(message);
    if (!i18n || i18n.locale === 'en') return text;
    return h('span', { lang: 'en', text: text });
  }

  /** The first language the browser asks for that portico speaks (as the server reads Accept-Language). */
  function browserLocale() {
    var asked = (navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || 'en']);
    for (var i = 0; i < asked.length; i++) {
      var primary = String(asked[i] || '').toLowerCase().split(/[-_]/)[0];
      if (primary && window.porticoI18n.supported(primary) === primary) return primary;
    }
    return 'en';
  }

  /** The shell's language (Luigi Client's current locale), else the browser's. */
  function shellLocale() {
    var locale = '';
    try { locale = LuigiClient.uxManager().getCurrentLocale(); } catch (error) { /* not started */ }
    return locale || browserLocale();
  }

  /**
   * Shows the view in `locale`'s texts, after any change asked for before; resolves true when the
   * language changed (what is drawn is then to be drawn again).
   */
  function translate(locale) {
    texts = texts.then(function () {
      var chosen = window.porticoI18n.supported(locale);
      if (i18n && i18n.locale === chosen) return false;
      return window.porticoI18n.load(chosen).then(function (loaded) {
        i18n = loaded.apply(document); // index.html's texts, <title> and <html lang>
        subtitle();
        $('main').hidden = false;
        return true;
      });
    });
    return texts;
  }

  function kindLabel(kind) {
    var lower = String(kind || '').toLowerCase();
    if (KIND_LABELS[lower]) return KIND_LABELS[lower];
    return lower ? lower.charAt(0).toUpperCase() + lower.slice(1) : '';
  }

  function humanize(word) {
    var spaced = String(word).replace(/([a-z])([A-Z])/g, '$1 $2').replace(/[-_]/g, ' ').toLowerCase();
    return spaced.charAt(0).toUpperCase() + spaced.slice(1);
  }

  // ---------------------------------------------------------------------------------------------
  // Entity references: `kind:namespace/name`, with defaults for the parts a spec may leave out.

  function parseRef(text, defaults) {
    defaults = defaults || {};
    var rest = String(text || '').trim();
    var kind = defaults.kind || '';
    var namespace = defaults.namespace || 'default';
    var colon = rest.indexOf(':');
    if (colon > 0) {
      kind = rest.slice(0, colon);
      rest = rest.slice(colon + 1);
    }
    var slash = rest.indexOf('/');
    if (slash >= 0) {
      namespace = rest.slice(0, slash);
      rest = rest.slice(slash + 1);
    }
    if (!kind || !namespace || !rest || rest.indexOf('/') >= 0 || rest.indexOf(':') >= 0) return null;
    return { kind: kind.toLowerCase(), namespace: namespace.toLowerCase(), name: rest };
  }

  function refString(ref) { return ref.kind + ':' + ref.namespace + '/' + ref.name; }
  function refKey(ref) { return refString(ref).toLowerCase(); }
  function sameRef(a, b) { return !!a && !!b && refKey(a) === refKey(b); }

  function entityRef(entity) {
    return {
      kind: String(entity.kind || '').toLowerCase(),
      namespace: String((entity.metadata && entity.metadata.namespace) || 'default').toLowerCase(),
      name: entity.metadata && entity.metadata.name
    };
  }

  /** `group:acme/platform` as people say it: the kind when it is not the usual one, the namespace when
   *  it is not the one being looked at. */
  function shortRef(ref, context) {
    context = context || {};
    var text = ref.name;
    if (ref.namespace !== context.namespace) text = ref.namespace + '/' + text;
    if (ref.kind !== context.kind) text = ref.kind + ':' + text;
    return text;
  }

  /** The owner of an entity: the ownedBy relation (full ref), else spec.owner read as Backstage does. */
  function ownerOf(entity) {
    var relation = (entity.relations || []).filter(function (r) { return r.type === 'ownedBy'; })[0];
    if (relation && relation.targetRef) return parseRef(relation.targetRef);
    var owner = entity.spec && entity.spec.owner;
    if (typeof owner !== 'string') return null;
    return parseRef(owner, { kind: 'group', namespace: entityRef(entity).namespace });
  }

  function displayName(entity) {
    var metadata = entity.metadata || {};
    var profile = entity.spec && entity.spec.profile;
    return metadata.title || (profile && profile.displayName) || metadata.name || '';
  }

  /** Where an entity's page lives, for a link opened in a new tab: in the shell, the shell's URL of this
   *  view with the entity as a node parameter; alone, this view's URL. */
  function entityHref(ref) {
    var shell = shellPath();
    return shell !== null
      ? shell + '?~entity=' + encodeURIComponent(refString(ref))
      : '?entity=' + encodeURIComponent(refString(ref));
  }

  /** The shell's path of this view (`/home/catalog`), when in the shell. */
  function shellPath() {
    if (!inLuigi) return null;
    try { return window.top.location.pathname; } catch (error) { return null; }
  }

  function safeUrl(url) {
    try {
      var parsed = new URL(String(url), location.href);
      return /^(https?:|mailto:)$/.test(parsed.protocol) ? parsed.href : null;
    } catch (error) {
      return null;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Talking to the catalog through portico

  /** An error answer: `status` 0 is a network failure. `message` is the server's (English); `textKey`,
   *  when set, the key of this app's own text for it. */
  function ApiError(status, code, message, requestId, textKey) {
    this.status = status;
    this.code = code;
    this.message = message;
    this.requestId = requestId;
    this.textKey = textKey || '';
  }

  function query(pairs) {
    var params = new URLSearchParams();
    pairs.forEach(function (pair) { params.append(pair[0], String(pair[1])); });
    var text = params.toString();
    return text ? '?' + text : '';
  }

  function api(path, pairs, signal) {
    return fetch(API + path + query(pairs || []), {
      credentials: 'same-origin',
      headers: { 'Accept': 'application/json' },
      signal: signal
    }).then(function (response) {
      var requestId = response.headers.get('x-request-id') || '';
      return response.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (error) { body = null; }
        if (response.ok && body !== null) return body;
        // portico: {"error": code, "message", "status", "request_id"}; Backstage: {"error": {"name", "message"}}.
        var code = '';
        var message = '';
        if (body && typeof body.error === 'string') {
          code = body.error;
          message = body.message || '';
          requestId = body.request_id || requestId;
        } else if (body && body.error && typeof body.error === 'object') {
          code = body.error.name || '';
          message = body.error.message || '';
        }
        if (response.ok) throw new ApiError(502, code, '', requestId, 'catalog.error.notJson');
        throw new ApiError(response.status, code, message || response.statusText, requestId);
      });
    }, function (error) {
      if (error && error.name === 'AbortError') throw error;
      throw new ApiError(0, 'network', '', '', 'catalog.error.unreachable');
    });
  }

  function isAbort(error) { return error && error.name === 'AbortError'; }

  // ---------------------------------------------------------------------------------------------
  // Routes and where they are kept
  //
  // A route is { view: 'list', list } or { view: 'entity', ref, list, fromList }. Its parameters are
  // `entity` or the list's (q, kind, owner, lifecycle, tag, sort, pageSize, page), defaults left out.
  // In the Luigi shell they are the shell's node parameters (/home/catalog?~entity=…): Luigi's iframes
  // are sandboxed, and a sandboxed frame's history.pushState adds no entry to the browser's history, so
  // only the shell's URL can give the back button something to go back to. Luigi tells this view about
  // a change of them (back, forward, or our own change) with a context update. Opened on its own, the
  // view keeps them in its own URL with history.pushState. Page cursors stay in memory (`cursors`), so
  // the URL names a page by its number.

  function defaultList() {
    return { q: '', kind: '', owner: '', lifecycle: '', tag: '', sort: 'name-asc', pageSize: DEFAULT_PAGE_SIZE, page: 1, cursor: '' };
  }

  function clampPageSize(value) {
    var size = parseInt(value, 10);
    if (!isFinite(size) || size < 1) return DEFAULT_PAGE_SIZE;
    return Math.min(size, MAX_PAGE_SIZE);
  }

  /** The route named by parameters read with `get(name)` (URLSearchParams, or Luigi's node params). */
  function routeFrom(get) {
    var list = defaultList();
    LIST_KEYS.forEach(function (key) {
      var value = get(key);
      if (value === null || value === undefined || value === '') return;
      if (key === 'pageSize') list.pageSize = clampPageSize(value);
      else if (key === 'page') list.page = Math.max(1, parseInt(value, 10) || 1);
      else if (key === 'sort') list.sort = SORTS[value] ? value : list.sort;
      else list[key] = String(value);
    });
    var entity = get('entity');
    if (entity) return { view: 'entity', ref: String(entity), list: null, fromList: false };
    return { view: 'list', list: list };
  }

  /** The parameters of a route, every key present (`undefined`: absent), for URLs and Luigi alike. */
  function routeParams(route) {
    var params = { entity: undefined };
    LIST_KEYS.forEach(function (key) { params[key] = undefined; });
    if (route.view === 'entity') {
      params.entity = route.ref;
      return params;
    }
    var defaults = defaultList();
    LIST_KEYS.forEach(function (key) {
      var value = route.list[key];
      if (value !== defaults[key] && value !== '' && value !== undefined) params[key] = String(value);
    });
    return params;
  }

  function paramsKey(params) {
    return ['entity'].concat(LIST_KEYS).map(function (key) {
      var value = params[key];
      return value === undefined || value === null || value === '' ? '' : String(value);
    }).join('\u0000');
  }

  function routeUrl(route) {
    var params = routeParams(route);
    var search = new URLSearchParams();
    ['entity'].concat(LIST_KEYS).forEach(function (key) {
      if (params[key] !== undefined) search.set(key, params[key]);
    });
    var text = search.toString();
    return location.pathname + (text ? '?' + text : '');
  }

  /** The route of this view's own URL (on its own, outside the shell). */
  function routeFromLocation() {
    var search = new URLSearchParams(location.search);
    var route = routeFrom(function (key) { return search.get(key); });
    var saved = history.state && history.state.catalog ? history.state : null;
    if (route.view === 'entity' && saved) {
      route.list = saved.returnTo || null;
      route.fromList = !!saved.fromList;
    }
    return route;
  }

  /** The route the shell's node parameters name. */
  function routeFromNodeParams() {
    var params = nodeParams();
    return routeFrom(function (key) { return params[key]; });
  }

  function nodeParams() {
    try { return LuigiClient.getNodeParams(true) || {}; } catch (error) { return {}; }
  }

  // ---------------------------------------------------------------------------------------------
  // App state

  var current = null; // the route shown
  var inLuigi = false; // the Luigi shell sent its context: routes live in its node parameters
  var luigiContext = null;
  var facets = null; // { kind: [{value, count}], ... } or null when unknown
  var seenOptions = { kind: {}, owner: {}, lifecycle: {}, tag: {} }; // fallback when facets are refused
  var cursors = {}; // list key (without page) -> { page number: Backstage cursor }
  var sentParams = []; // node parameters this view asked Luigi for, whose echo is still to come
  var listRequest = null;
  var entityRequest = null;
  var listSeq = 0;
  var entitySeq = 0;
  var lastList = null; // { key, result } of the list on screen
  var searchTimer = null;
  var shownOnce = false;
  var focusRefAfterList = null;
  var appsShown = 'null';

  function apps() {
    return luigiContext && Array.isArray(luigiContext.apps) ? luigiContext.apps : null;
  }

  function appsFor(ref) {
    return (apps() || []).filter(function (app) {
      if (!app || !app.catalogRef || !app.path) return false;
      return sameRef(parseRef(app.catalogRef, { namespace: 'default' }), ref);
    });
  }

  function readyForLuigi() {
    if (!shownOnce || !inLuigi) return;
    try { LuigiClient.uxManager().hideLoadingIndicator(); } catch (error) { /* not in a Luigi shell */ }
  }

  function rendered() {
    shownOnce = true;
    readyForLuigi();
  }

  // ---------------------------------------------------------------------------------------------
  // Navigation inside the app

  /** Shows `route` and records it: a new history entry, or (`replace`) in place of the current one. */
  function go(route, options) {
    options = options || {};
    if (inLuigi) {
      var params = routeParams(route);
      sentParams.push({ key: paramsKey(params), at: Date.now() });
      LuigiClient.addNodeParams(params, !options.replace);
    } else {
      var state = route.view === 'entity'
        ? { catalog: true, returnTo: route.list, fromList: !!route.fromList }
        : { catalog: true };
      if (options.replace) history.replaceState(state, '', routeUrl(route));
      else history.pushState(state, '', routeUrl(route));
    }
    show(route, options);
  }

  /** Whether two routes show the same thing. */
  function sameRoute(a, b) {
    return !!a && !!b && paramsKey(routeParams(a)) === paramsKey(routeParams(b));
  }

  function show(route, options) {
    options = options || {};
    var previous = current;
    if (route.view === 'list') {
      // A page is reached through its cursor; a page whose cursor is not known is page 1.
      var known = route.list.page > 1 ? (cursors[baseKey(route.list)] || {})[route.list.page] : '';
      route.list.cursor = known || '';
      if (route.list.page > 1 && !known) {
        route.list.page = 1;
        current = route;
        go(route, { replace: true, restoring: options.restoring });
        return;
      }
    }
    current = route;
    if (route.view === 'entity') {
      if (!route.list && previous) route.list = previous.list;
      $('list-view').hidden = true;
      $('entity-view').hidden = false;
      if (listRequest) listRequest.abort();
      loadEntity(route.ref, options);
    } else {
      $('entity-view').hidden = true;
      $('list-view').hidden = false;
      if (entityRequest) entityRequest.abort();
      document.title = t('catalog.title');
      syncControls(route.list);
      if (previous && previous.view === 'entity' && previous.refKey) focusRefAfterList = previous.refKey;
      loadList(route.list, options);
    }
  }

  /** The list route with `changes` applied; a change of query starts again at the first page. */
  function updateList(changes, options) {
    if (!current || current.view !== 'list') return;
    // The search box is the truth for the search: a filter changed while a typed search waits for its
    // debounce must not lose the typing.
    var list = Object.assign({}, current.list, { q: $('q').value }, changes);
    if (!('page' in changes)) list.page = 1;
    go({ view: 'list', list: list }, Object.assign({ replace: true }, options || {}));
  }

  function openEntity(ref) {
    var list = current && current.view === 'list' ? current.list : null;
    go({ view: 'entity', ref: refString(ref), list: list, fromList: !!list });
  }

  function backToList() {
    if (current && current.view === 'entity' && current.fromList) {
      // Back to the entry this page was opened from. In the shell that is the top window's history: a
      // sandboxed frame's own history.back() is refused.
      try {
        (inLuigi ? window.top : window).history.back();
        return;
      } catch (error) { /* fall through: a new entry */ }
    }
    var list = (current && current.list) || defaultList();
    go({ view: 'list', list: Object.assign({}, list, { page: 1 }) });
  }

  window.addEventListener('popstate', function (event) {
    // Luigi Client replaces this view's URL and sends a popstate of its own on every shell navigation;
    // routes in the shell come with the context update that follows.
    if (inLuigi || event.state === 'luiginavigation') return;
    show(routeFromLocation(), { restoring: true });
  });

  /** A change of the shell's node parameters: our own (its echo) or the back and forward buttons. */
  function nodeParamsChanged() {
    var route = routeFromNodeParams();
    var key = paramsKey(routeParams(route));
    var now = Date.now();
    sentParams = sentParams.filter(function (sent) { return now - sent.at < 5000; });
    var echo = sentParams.findIndex(function (sent) { return sent.key === key; });
    if (echo >= 0) {
      sentParams.splice(echo, 1);
      return;
    }
    if (sameRoute(route, current)) return;
    if (route.view === 'entity' && current && current.view === 'list') {
      route.list = current.list;
      route.fromList = true;
    }
    show(route, { restoring: true });
  }

  // ---------------------------------------------------------------------------------------------
  // States (loading, empty, error, session ended, forbidden)

  function stateBox(container, spec) {
    clear(container);
    // The box says it; the live status line stays for screen readers only.
    if (container.id === 'list-state') $('list-status').classList.add('visually-hidden');
    container.className = 'state state-' + spec.kind;
    container.setAttribute('data-state', spec.kind);
    if (spec.kind === 'loading') {
      container.appendChild(h('div', { className: 'spinner', 'aria-hidden': 'true' }));
    }
    container.appendChild(h(spec.kind === 'loading' ? 'p' : 'h2', { className: 'state-title', text: spec.title }));
    // `text`: a string, or nodes (a sentence with the server's words in it).
    if (spec.text) container.appendChild(h('p', { className: 'state-text' }, [].concat(spec.text)));
    if (spec.requestId) {
      container.appendChild(h('p', { className: 'state-request-id' }, [
        t('catalog.state.requestId') + ' ', h('code', { 'data-testid': 'request-id', text: spec.requestId })
      ]));
    }
    var actions = (spec.actions || []).filter(Boolean);
    if (actions.length) container.appendChild(h('p', { className: 'state-actions' }, actions));
    container.setAttribute('role', spec.kind === 'error' || spec.kind === 'session' || spec.kind === 'forbidden' ? 'alert' : 'status');
    container.hidden = false;
  }

  function hideState(container) {
    if (container.id === 'list-state') $('list-status').classList.remove('visually-hidden');
    container.hidden = true;
    clear(container);
    container.removeAttribute('data-state');
  }

  function signInAgainLink() {
    return h('a', {
      href: '/', target: '_top', className: 'button', 'data-testid': 'sign-in-again', text: t('catalog.error.signInAgain'),
      onclick: function (event) {
        event.preventDefault();
        try {
          window.top.location.reload();
        } catch (error) {
          window.parent.postMessage({ portico: 'session-ended' }, location.origin);
        }
      }
    });
  }

  /** The state for a failed request of the list (`ref` null) or of the entity `ref` (its string);
   *  `retry` is offered where trying again can help. */
  function errorState(error, retry, ref) {
    if (error.status === 401) {
      return {
        kind: 'session', title: t('catalog.error.sessionTitle'),
        text: t('catalog.error.sessionText'),
        requestId: error.requestId, actions: [signInAgainLink()]
      };
    }
    // What went wrong in words: this app's own text, else the server's message (null: none).
    var message = error.textKey ? t(error.textKey) : (error.message ? error.message : null);
    var own = !!error.textKey;
    if (error.status === 403) {
      return {
        kind: 'forbidden',
        title: ref ? t('catalog.error.forbiddenEntity', { ref: ref }) : t('catalog.error.forbidden'),
        text: message
          ? nodes(compose('catalog.error.forbiddenWithMessage', { message: own ? message : serverText(message, true) }))
          : t('catalog.error.forbiddenText'),
        requestId: error.requestId
      };
    }
    var text;
    if (error.status === 0) text = message;
    else if (error.status === 502 || error.status === 503 || error.status === 504) {
      text = message
        ? nodes(compose('catalog.error.backendWithMessage', { status: error.status, message: own ? message : serverText(message, false) }))
        : t('catalog.error.backend', { status: error.status });
    } else {
      text = message
        ? nodes(compose('catalog.error.httpWithMessage', { status: error.status, message: own ? message : serverText(message, true) }))
        : t('catalog.error.http', { status: error.status });
    }
    return {
      kind: 'error', title: ref ? t('catalog.error.loadEntity', { ref: ref }) : t('catalog.error.load'), text: text, requestId: error.requestId,
      actions: [retry && h('button', { type: 'button', className: 'button', 'data-testid': 'retry', text: t('catalog.error.retry'), onclick: retry })]
    };
  }

  /** The nodes of a fragment, as a list. */
  function nodes(fragment) { return Array.prototype.slice.call(fragment.childNodes); }

  function capitalise(text) {
    text = String(text || '');
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  // ---------------------------------------------------------------------------------------------
  // The list

  function hasQuery(list) {
    return !!(list.q.trim() || list.kind || list.owner || list.lifecycle || list.tag);
  }

  function listPairs(list) {
    var pairs = [['limit', list.pageSize]];
    if (list.cursor) {
      // A cursor carries the query, the order and the search; Backstage reads only it and limit.
      pairs.push(['cursor', list.cursor]);
    } else {
      var statements = [];
      FILTERS.forEach(function (filter) {
        if (list[filter.key]) statements.push(filter.field + '=' + list[filter.key]);
      });
      if (statements.length) pairs.push(['filter', statements.join(',')]);
      pairs.push(['orderField', SORTS[list.sort] || SORTS['name-asc']]);
      var term = list.q.trim();
      if (term) {
        pairs.push(['fullTextFilterTerm', term]);
        pairs.push(['fullTextFilterFields', SEARCH_FIELDS]);
      }
    }
    pairs.push(['fields', LIST_FIELDS]);
    return pairs;
  }

  function listKey(list) { return JSON.stringify(listPairs(list)); }

  /** What a list asks for, whatever its page: the key its page cursors are kept under. */
  function baseKey(list) {
    return JSON.stringify([list.q.trim(), list.kind, list.owner, list.lifecycle, list.tag, list.sort, list.pageSize]);
  }

  function loadList(list, options) {
    options = options || {};
    if (listRequest) listRequest.abort();
    clearTimeout(searchTimer);
    var seq = ++listSeq;
    var key = listKey(list);
    var results = $('results');
    if (lastList && lastList.key === key && options.restoring) {
      renderList(list, lastList.result);
      return;
    }
    var controller = new AbortController();
    listRequest = controller;
    results.setAttribute('aria-busy', 'true');
    var hadRows = !$('entities').hidden;
    if (hadRows) {
      results.classList.add('is-loading');
    } else {
      $('pager').hidden = true;
      stateBox($('list-state'), { kind: 'loading', title: t('catalog.status.loading') });
    }
    api('/entities/by-query', listPairs(list), controller.signal).then(function (result) {
      if (seq !== listSeq) return;
      lastList = { key: key, result: result };
      renderList(list, result);
    }, function (error) {
      if (isAbort(error) || seq !== listSeq) return;
      results.setAttribute('aria-busy', 'false');
      results.classList.remove('is-loading');
      if (list.cursor && error.status === 400) {
        // A cursor from an older answer (or a changed catalog): start again at the first page.
        updateList({ page: 1 });
        return;
      }
      $('entities').hidden = true;
      $('pager').hidden = true;
      $('list-status').textContent = '';
      stateBox($('list-state'), errorState(error, function () { loadFacets(); loadList(list); }, null));
      rendered();
    });
  }

  function renderList(list, result) {
    var results = $('results');
    results.setAttribute('aria-busy', 'false');
    results.classList.remove('is-loading');
    var items = Array.isArray(result.items) ? result.items : [];
    var total = typeof result.totalItems === 'number' ? result.totalItems : null;
    var pageInfo = result.pageInfo || {};
    var pageCursors = cursors[baseKey(list)] = cursors[baseKey(list)] || {};
    if (pageInfo.nextCursor) pageCursors[list.page + 1] = pageInfo.nextCursor;
    if (pageInfo.prevCursor && list.page > 2) pageCursors[list.page - 1] = pageInfo.prevCursor;
    var tbody = $('entity-rows');
    clear(tbody);
    items.forEach(function (entity) {
      remember(entity);
      tbody.appendChild(entityRow(entity));
    });
    if (!facets) fillFilterOptions();

    if (items.length === 0) {
      $('entities').hidden = true;
      $('pager').hidden = !(pageInfo.prevCursor);
      if (hasQuery(list)) {
        stateBox($('list-state'), {
          kind: 'no-results', title: t('catalog.noMatch.title'),
          text: describeQuery(list) + ' ' + t('catalog.noMatch.hint'),
          actions: [h('button', { type: 'button', className: 'button', 'data-testid': 'clear-filters-empty', text: t('catalog.filters.clear'), onclick: clearFilters })]
        });
        $('list-status').textContent = t('catalog.status.noMatch');
      } else if (list.cursor) {
        stateBox($('list-state'), {
          kind: 'no-results', title: t('catalog.emptyPage.title'),
          text: t('catalog.emptyPage.text'),
          actions: [h('button', { type: 'button', className: 'button', text: t('catalog.emptyPage.firstPage'), onclick: function () { updateList({ page: 1 }); } })]
        });
        $('list-status').textContent = '';
      } else {
        stateBox($('list-state'), {
          kind: 'empty', title: t('catalog.empty.title'),
          text: t('catalog.empty.text')
        });
        $('list-status').textContent = t('catalog.status.empty');
      }
    } else {
      hideState($('list-state'));
      $('entities').hidden = false;
      var first = (list.page - 1) * list.pageSize + 1;
      var last = first + items.length - 1;
      var range = total !== null
        ? t('catalog.status.range', { first: num(first), last: num(last), total: num(total) })
        : t('catalog.status.rangeOpen', { first: num(first), last: num(last) });
      var status;
      if (total === null) status = t('catalog.status.showing', { range: range });
      else {
        var says = (hasQuery(list) ? 'catalog.status.match' : 'catalog.status.all') + (total > items.length ? 'Showing' : '');
        status = counted(says, total, { range: range });
      }
      $('list-status').textContent = status;
      $('entities-caption').textContent = t('catalog.table.captionRange', { range: range });
      var pages = total !== null ? Math.max(1, Math.ceil(total / list.pageSize)) : null;
      $('page-info').textContent = pages
        ? t('catalog.pager.pageOf', { page: num(list.page), pages: num(pages) })
        : t('catalog.pager.page', { page: num(list.page) });
      $('prev-page').disabled = !pageInfo.prevCursor;
      $('next-page').disabled = !pageInfo.nextCursor;
      $('pager').hidden = !pageInfo.prevCursor && !pageInfo.nextCursor && list.pageSize === DEFAULT_PAGE_SIZE && (total === null || total <= PAGE_SIZES[0]);
    }
    fillPageSizes(list.pageSize);
    if (focusRefAfterList) {
      var link = tbody.querySelector('a[data-ref="' + cssEscape(focusRefAfterList) + '"]');
      if (link) link.focus();
      focusRefAfterList = null;
    }
    rendered();
  }

  function cssEscape(text) {
    return window.CSS && CSS.escape ? CSS.escape(text) : String(text).replace(/["\\]/g, '\\$&');
  }

  function describeQuery(list) {
    var parts = [];
    if (list.q.trim()) parts.push(t('catalog.noMatch.term', { term: list.q.trim() }));
    if (list.kind) parts.push(t('catalog.noMatch.kind', { kind: kindLabel(list.kind) }));
    if (list.owner) parts.push(t('catalog.noMatch.owner', { owner: shortRef(parseRef(list.owner) || { kind: '', namespace: '', name: list.owner }, { kind: 'group' }) }));
    if (list.lifecycle) parts.push(t('catalog.noMatch.lifecycle', { lifecycle: list.lifecycle }));
    if (list.tag) parts.push(t('catalog.noMatch.tag', { tag: list.tag }));
    // "a, b and c" the way the language joins a list.
    var joined = i18n.listParts(parts, 'conjunction').map(function (part) { return part.value; }).join('');
    return t('catalog.noMatch.text', { query: joined });
  }

  function entityRow(entity) {
    var ref = entityRef(entity);
    var metadata = entity.metadata || {};
    var spec = entity.spec || {};
    var title = displayName(entity);
    var link = h('a', {
      href: entityHref(ref), className: 'entity-link', 'data-ref': refKey(ref), 'data-testid': 'entity-link',
      onclick: function (event) {
        if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
        event.preventDefault();
        openEntity(ref);
      }
    }, [title]);
    var nameCell = h('th', { scope: 'row', className: 'col-name', 'data-label': t('catalog.table.name') }, [
      link,
      h('span', { className: 'entity-sub' }, [
        title !== metadata.name ? metadata.name + ' · ' : '',
        h('span', { className: 'namespace', title: t('catalog.table.namespace'), text: ref.namespace })
      ]),
      appsFor(ref).length ? h('span', { className: 'badge badge-app', text: t('catalog.table.portalApp') }) : null
    ]);
    var owner = ownerOf(entity);
    var cell = function (className, label, content) {
      var empty = content.length === 1 && (content[0] === '\u2014' || (content[0] && content[0].textContent === '\u2014'));
      return h('td', { className: className + (empty ? ' is-empty' : ''), 'data-label': label }, [h('div', { className: 'cell' }, content)]);
    };
    var row = h('tr', { 'data-testid': 'entity-row', 'data-ref': refKey(ref) }, [
      nameCell,
      cell('col-kind', t('catalog.table.kind'), [
        kindLabel(entity.kind), spec.type ? h('span', { className: 'entity-sub', text: String(spec.type) }) : null
      ]),
      cell('col-owner', t('catalog.table.owner'), [owner ? shortRef(owner, { kind: 'group', namespace: ref.namespace }) : '\u2014']),
      cell('col-lifecycle', t('catalog.table.lifecycle'), [spec.lifecycle ? lifecycleBadge(spec.lifecycle) : '\u2014']),
      cell('col-description', t('catalog.table.description'), [metadata.description ? String(metadata.description) : '\u2014']),
      cell('col-tags', t('catalog.table.tags'), [tagList(metadata.tags)])
    ]);
    return row;
  }

  function lifecycleBadge(lifecycle) {
    var value = String(lifecycle);
    var known = ['production', 'experimental', 'deprecated'].indexOf(value.toLowerCase()) >= 0 ? value.toLowerCase() : 'other';
    return h('span', { className: 'badge lifecycle lifecycle-' + known, text: value });
  }

  function tagList(tags) {
    if (!Array.isArray(tags) || tags.length === 0) return document.createTextNode('\u2014');
    return h('ul', { className: 'tags', 'aria-label': t('catalog.table.tags') }, tags.map(function (tag) {
      return h('li', { className: 'tag', text: String(tag) });
    }));
  }

  // ---------------------------------------------------------------------------------------------
  // Filters

  function syncControls(list) {
    if (document.activeElement !== $('q') || $('q').value.trim() !== list.q.trim()) $('q').value = list.q;
    FILTERS.forEach(function (filter) {
      fillSelect(filter);
      $(filter.select).value = list[filter.key];
    });
    $('f-sort').value = list.sort;
    $('clear-filters').disabled = !hasQuery(list);
    var active = FILTERS.filter(function (filter) { return list[filter.key]; }).length;
    $('filters-count').textContent = active ? num(active) : '';
    $('filters-active').textContent = active ? counted('catalog.filters.active', active) : '';
    fillPageSizes(list.pageSize);
  }

  /** Options for a filter: the facet counts when known, else what the loaded pages showed. */
  function optionsFor(filter) {
    if (facets && Array.isArray(facets[filter.field])) {
      return facets[filter.field].map(function (facet) { return { value: facet.value, count: facet.count }; });
    }
    return Object.keys(seenOptions[filter.key]).sort().map(function (value) { return { value: value, count: null }; });
  }

  function optionLabel(filter, value) {
    if (filter.key === 'kind') return kindLabel(value);
    if (filter.key === 'owner') {
      var ref = parseRef(value);
      return ref ? shortRef(ref, { kind: 'group' }) : value;
    }
    return value;
  }

  function fillSelect(filter) {
    var select = $(filter.select);
    var selected = current && current.list ? current.list[filter.key] : select.value;
    var options = optionsFor(filter);
    if (selected && !options.some(function (option) { return option.value.toLowerCase() === selected.toLowerCase(); })) {
      options.push({ value: selected, count: null });
    }
    // Rebuilt only when the options (or the language) change, so a select being used keeps its state.
    var signature = JSON.stringify([i18n.locale, options]);
    if (select.dataset.options !== signature) {
      select.dataset.options = signature;
      clear(select);
      select.appendChild(h('option', { value: '', text: t(filter.any) }));
      options.forEach(function (option) {
        var label = optionLabel(filter, option.value);
        if (option.count !== null) label = t('catalog.filters.optionCount', { label: label, count: num(option.count) });
        select.appendChild(h('option', { value: option.value, text: label }));
      });
    }
    if (selected) {
      var match = options.filter(function (option) { return option.value.toLowerCase() === selected.toLowerCase(); })[0];
      select.value = match ? match.value : selected;
    }
    // A filter with nothing to choose says so rather than offering an empty list.
    var empty = options.length === 0;
    select.disabled = empty && !selected;
    select.firstChild.textContent = empty && !selected && filter.key === 'tag' ? t('catalog.filters.noTags') : t(filter.any);
  }

  function fillFilterOptions() { FILTERS.forEach(fillSelect); }

  function remember(entity) {
    var metadata = entity.metadata || {};
    var spec = entity.spec || {};
    if (entity.kind) seenOptions.kind[entity.kind] = true;
    var owner = ownerOf(entity);
    if (owner) seenOptions.owner[refString(owner)] = true;
    if (spec.lifecycle) seenOptions.lifecycle[String(spec.lifecycle)] = true;
    (Array.isArray(metadata.tags) ? metadata.tags : []).forEach(function (tag) { seenOptions.tag[String(tag)] = true; });
  }

  function loadFacets() {
    var pairs = FILTERS.map(function (filter) { return ['facet', filter.field]; });
    return api('/entity-facets', pairs).then(function (result) {
      facets = result && result.facets ? result.facets : null;
      fillFilterOptions();
    }, function () {
      // Refused or failed: the options come from the entities loaded so far.
      facets = null;
      fillFilterOptions();
    });
  }

  function clearFilters() {
    $('q').value = '';
    updateList({ q: '', kind: '', owner: '', lifecycle: '', tag: '' });
    $('q').focus();
  }

  $('filters').addEventListener('submit', function (event) {
    event.preventDefault();
    clearTimeout(searchTimer);
    updateList({ q: $('q').value });
  });
  $('q').addEventListener('input', function () {
    clearTimeout(searchTimer);
    var value = $('q').value;
    searchTimer = setTimeout(function () {
      if (current && current.view === 'list' && value.trim() !== current.list.q.trim()) updateList({ q: value });
      else if (current && current.view === 'list') updateList({ q: value }, { restoring: true });
    }, SEARCH_DEBOUNCE_MS);
  });
  $('q').addEventListener('keydown', function (event) {
    if (event.key === 'Escape' && $('q').value) {
      event.preventDefault();
      $('q').value = '';
      updateList({ q: '' });
    }
  });
  FILTERS.forEach(function (filter) {
    $(filter.select).addEventListener('change', function () {
      var change = {};
      change[filter.key] = $(filter.select).value;
      updateList(change);
    });
  });
  $('f-sort').addEventListener('change', function () { updateList({ sort: $('f-sort').value }); });
  $('clear-filters').addEventListener('click', clearFilters);
  $('filters-toggle').addEventListener('click', function () {
    var open = !$('filters').classList.contains('filters-open');
    $('filters').classList.toggle('filters-open', open);
    $('filters-toggle').setAttribute('aria-expanded', String(open));
    if (open) $('f-kind').focus();
  });

  function fillPageSizes(size) {
    var select = $('page-size');
    var sizes = PAGE_SIZES.slice();
    if (sizes.indexOf(size) < 0) sizes.push(size);
    sizes.sort(function (a, b) { return a - b; });
    if (select.dataset.sizes !== sizes.join(',')) {
      select.dataset.sizes = sizes.join(',');
      clear(select);
      sizes.forEach(function (value) { select.appendChild(h('option', { value: String(value), text: num(value) })); });
    }
    select.value = String(size);
  }

  $('page-size').addEventListener('change', function () {
    updateList({ pageSize: clampPageSize($('page-size').value) });
  });

  function turnPage(button, step) {
    if (!current || current.view !== 'list' || button.disabled) return;
    updateList({ page: Math.max(1, current.list.page + step) });
    $('results').scrollIntoView({ block: 'nearest' });
  }
  $('prev-page').addEventListener('click', function () { turnPage($('prev-page'), -1); });
  $('next-page').addEventListener('click', function () { turnPage($('next-page'), 1); });

  // ---------------------------------------------------------------------------------------------
  // The entity page

  $('back-to-list').addEventListener('click', function (event) {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    backToList();
  });

  function loadEntity(text, options) {
    if (entityRequest) entityRequest.abort();
    var seq = ++entitySeq;
    var article = $('entity');
    var box = $('entity-state');
    var ref = parseRef(text);
    article.hidden = true;
    clear(article);
    if (!ref) {
      current.refKey = null;
      stateBox(box, {
        kind: 'not-found', title: t('catalog.entity.notRef.title'),
        text: t('catalog.entity.notRef.text', { text: text }),
        actions: [backButton()]
      });
      document.title = t('catalog.notFoundTitle');
      focusHeading(box);
      rendered();
      return;
    }
    current.refKey = refKey(ref);
    var controller = new AbortController();
    entityRequest = controller;
    stateBox(box, { kind: 'loading', title: t('catalog.entity.loading', { ref: refString(ref) }) });
    var path = '/entities/by-name/' + [ref.kind, ref.namespace, ref.name].map(encodeURIComponent).join('/');
    api(path, [], controller.signal).then(function (entity) {
      if (seq !== entitySeq) return null;
      return related(entity, controller.signal).then(function (found) {
        if (seq !== entitySeq) return;
        hideState(box);
        renderEntity(entity, found);
        if (!options.restoring) focusHeading(article);
        rendered();
      });
    }).catch(function (error) {
      if (isAbort(error) || seq !== entitySeq) return;
      if (error.status === 404) {
        stateBox(box, {
          kind: 'not-found', title: t('catalog.entity.notFound.title'),
          text: t('catalog.entity.notFound.text', { ref: refString(ref) }),
          requestId: error.requestId,
          actions: [backButton()]
        });
        box.setAttribute('data-testid', 'entity-state');
        document.title = t('catalog.notFoundTitle');
      } else {
        stateBox(box, errorState(error, function () { loadEntity(text, options); }, refString(ref)));
        box.querySelector('.state-actions') || box.appendChild(h('p', { className: 'state-actions' }, [backButton()]));
      }
      focusHeading(box);
      rendered();
    });
  }

  function backButton() {
    return h('button', { type: 'button', className: 'button-secondary', text: t('catalog.entity.backToAll'), onclick: backToList });
  }

  function focusHeading(container) {
    var heading = container.querySelector('h1, h2');
    if (!heading) return;
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: false });
  }

  /** The entity's owner, system and relation targets that this portal's catalog holds, by ref key, in one
   *  by-query request (one filter per ref; portico turns refs outside the tenant into no match). */
  function related(entity, signal) {
    var refs = {};
    var add = function (ref) { if (ref) refs[refKey(ref)] = ref; };
    var ns = entityRef(entity).namespace;
    add(ownerOf(entity));
    if (entity.spec && typeof entity.spec.system === 'string') add(parseRef(entity.spec.system, { kind: 'system', namespace: ns }));
    if (entity.spec && typeof entity.spec.domain === 'string') add(parseRef(entity.spec.domain, { kind: 'domain', namespace: ns }));
    (entity.relations || []).forEach(function (relation) { add(parseRef(relation.targetRef)); });
    var list = Object.keys(refs).slice(0, 90).map(function (key) { return refs[key]; });
    if (list.length === 0) return Promise.resolve({});
    var pairs = [['limit', list.length], ['fields', 'kind,metadata.name,metadata.namespace,metadata.title,spec.profile.displayName']];
    list.forEach(function (ref) {
      pairs.push(['filter', 'kind=' + ref.kind + ',metadata.namespace=' + ref.namespace + ',metadata.name=' + ref.name]);
    });
    return api('/entities/by-query', pairs, signal).then(function (result) {
      var found = {};
      (result.items || []).forEach(function (item) { found[refKey(entityRef(item))] = item; });
      return found;
    }, function (error) {
      if (isAbort(error)) throw error;
      return null; // unknown: link everything
    });
  }

  /** A link to a related entity's page when this catalog holds it, else its ref as text. */
  function refLink(ref, found, context, testId) {
    var key = refKey(ref);
    var entity = found ? found[key] : undefined;
    var label = entity ? displayName(entity) : shortRef(ref, context);
    if (found && !entity) {
      return h('span', { className: 'ref-missing', 'data-testid': testId ? testId + '-text' : null, title: t('catalog.entity.notInCatalog') }, [
        shortRef(ref, context), h('span', { className: 'visually-hidden', text: ' ' + t('catalog.entity.notInCatalogHint') })
      ]);
    }
    return h('a', {
      href: entityHref(ref), 'data-ref': key, 'data-testid': testId || null,
      onclick: function (event) {
        if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
        event.preventDefault();
        go({ view: 'entity', ref: refString(ref), list: current.list, fromList: false });
      }
    }, [label]);
  }

  function renderEntity(entity, found) {
    var article = $('entity');
    clear(article);
    var ref = entityRef(entity);
    var metadata = entity.metadata || {};
    var spec = entity.spec || {};
    var title = displayName(entity);
    var context = { kind: 'group', namespace: ref.namespace };
    document.title = t('catalog.documentTitle', { title: title });

    var owner = ownerOf(entity);
    var system = typeof spec.system === 'string' ? parseRef(spec.system, { kind: 'system', namespace: ref.namespace }) : null;
    var facts = [];
    function fact(label, value, testId) {
      facts.push(h('div', { className: 'fact' }, [
        h('dt', { text: label }),
        h('dd', { 'data-testid': testId }, [value])
      ]));
    }
    fact(t('catalog.entity.owner'), owner ? refLink(owner, found, context, 'entity-owner-link') : '\u2014', 'entity-owner');
    fact(t('catalog.entity.lifecycle'), spec.lifecycle ? lifecycleBadge(spec.lifecycle) : '\u2014', 'entity-lifecycle');
    fact(t('catalog.entity.system'), system ? refLink(system, found, { kind: 'system', namespace: ref.namespace }, 'entity-system-link') : '\u2014', 'entity-system');
    fact(t('catalog.entity.namespace'), ref.namespace, 'entity-namespace');
    if (spec.profile && spec.profile.email) {
      var mail = safeUrl('mailto:' + spec.profile.email);
      fact(t('catalog.entity.email'), mail ? h('a', { href: mail, text: String(spec.profile.email) }) : String(spec.profile.email), 'entity-email');
    }
    fact(t('catalog.entity.tags'), tagList(metadata.tags), 'entity-tags');

    var kindLine = kindLabel(entity.kind) + (spec.type ? ' \u00b7 ' + spec.type : '');
    article.appendChild(h('header', { className: 'entity-head' }, [
      h('p', { className: 'entity-kind', 'data-testid': 'entity-kind', text: kindLine }),
      h('h1', { id: 'entity-title', 'data-testid': 'entity-title', text: title }),
      h('p', { className: 'entity-ref' }, [h('code', { 'data-testid': 'entity-ref', text: refString(ref) })]),
      h('p', { className: 'entity-description', 'data-testid': 'entity-description', text: metadata.description || t('catalog.entity.noDescription') })
    ]));
    var body = h('div', { className: 'entity-body' });
    article.appendChild(body);

    body.appendChild(h('section', { className: 'card card-main', 'aria-labelledby': 'about-title' }, [
      h('h2', { id: 'about-title', text: t('catalog.entity.about') }),
      h('dl', { className: 'facts' }, facts)
    ]));

    // Beside it: the portal apps that belong to the entity, and its links (each only when there are some).
    var side = h('div', { className: 'entity-side' });
    var portalApps = apps() ? appsFor(ref) : [];
    if (portalApps.length) {
      side.appendChild(h('section', { className: 'card', 'aria-labelledby': 'apps-title', 'data-testid': 'entity-apps' }, [
        h('h2', { id: 'apps-title', text: t('catalog.entity.portalApps') }),
        h('ul', { className: 'app-list' }, portalApps.map(function (app) {
          return h('li', {}, [h('a', {
            href: app.path, target: '_top', className: 'button', 'data-testid': 'entity-app-' + app.id,
            onclick: function (event) {
              if (!inLuigi) return;
              event.preventDefault();
              LuigiClient.linkManager().navigate(app.path);
            }
          }, [t('catalog.entity.openApp', { app: app.label || app.id })])]);
        }))
      ]));
    }

    var links = (Array.isArray(metadata.links) ? metadata.links : []).map(function (link) {
      var url = link && safeUrl(link.url);
      if (!url) return null;
      return h('li', {}, [h('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, [
        String(link.title || link.url), h('span', { className: 'visually-hidden', text: ' ' + t('catalog.entity.newTab') }),
        h('span', { className: 'external', 'aria-hidden': 'true', text: ' \u2197' })
      ])]);
    }).filter(Boolean);
    if (links.length) {
      side.appendChild(h('section', { className: 'card', 'aria-labelledby': 'links-title', 'data-testid': 'entity-links' }, [
        h('h2', { id: 'links-title', text: t('catalog.entity.links') }),
        h('ul', { className: 'link-list' }, links)
      ]));
    }
    if (side.childNodes.length) {
      body.classList.add('has-side');
      body.appendChild(side);
    }

    var groups = {};
    (entity.relations || []).forEach(function (relation) {
      var target = parseRef(relation.targetRef);
      if (!target || !relation.type) return;
      (groups[relation.type] = groups[relation.type] || []).push(target);
    });
    var types = Object.keys(groups).sort(function (a, b) {
      var ia = RELATIONS.indexOf(a);
      var ib = RELATIONS.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
    });
    var relationSection = h('section', { className: 'card card-wide', 'aria-labelledby': 'relations-title', 'data-testid': 'entity-relations' }, [
      h('h2', { id: 'relations-title', text: t('catalog.entity.relations') })
    ]);
    if (types.length === 0) relationSection.appendChild(h('p', { className: 'meta', text: t('catalog.entity.noRelations') }));
    else {
      relationSection.appendChild(h('div', { className: 'relation-groups' }, types.map(function (type) {
        var id = 'relation-' + type;
        return h('div', { className: 'relation-group', 'data-testid': 'relation-group-' + type }, [
          h('h3', { id: id, text: RELATIONS.indexOf(type) >= 0 ? t('catalog.relations.' + type) : humanize(type) }),
          h('ul', { 'aria-labelledby': id }, groups[type].map(function (target) {
            return h('li', {}, [
              refLink(target, found, { namespace: ref.namespace }, 'relation-link'),
              h('span', { className: 'entity-sub', text: ' ' + kindLabel(target.kind) })
            ]);
          }))
        ]);
      })));
    }
    body.appendChild(relationSection);
    article.hidden = false;
  }

  // ---------------------------------------------------------------------------------------------
  // Luigi, and the start

  var tenantName = $('tenant-name'); // kept: subtitle() moves it into each language's sentence
  var tenantTitle = '';

  /** The line under the heading, with the tenant's name (or "this portal") in its place. */
  function subtitle() {
    tenantName.textContent = tenantTitle || t('catalog.thisPortal');
    var line = $('list-subtitle');
    clear(line);
    line.appendChild(compose('catalog.subtitle', { tenant: tenantName }));
  }

  /** Draws what is shown again, in a language just loaded. */
  function redraw() {
    if (current) show(current, { restoring: true });
  }

  function onContext(context) {
    luigiContext = context || null;
    var tenant = luigiContext && luigiContext.tenant;
    if (tenant && tenant.title) {
      tenantTitle = String(tenant.title);
      tenantName.textContent = tenantTitle;
    }
    // The apps may have arrived or changed: redraw what shows them.
    var appsNow = JSON.stringify(apps());
    if (appsNow === appsShown) return;
    appsShown = appsNow;
    if (current && current.view === 'entity' && !$('entity').hidden) loadEntity(current.ref, { restoring: true });
    else if (current && current.view === 'list' && lastList && listKey(current.list) === lastList.key) renderList(current.list, lastList.result);
  }

  var started = false;
  function start(route) {
    if (started) return;
    started = true;
    fillFilterOptions();
    loadFacets();
    show(route || routeFromLocation(), { restoring: true });
  }

  /** The shell is there: from now on routes live in its node parameters. */
  function enterLuigi(context) {
    inLuigi = true;
    var shell = shellPath();
    if (shell !== null) $('back-to-list').setAttribute('href', shell);
    onContext(context);
    var params = nodeParams();
    var named = Object.keys(params).some(function (key) { return key === 'entity' || LIST_KEYS.indexOf(key) >= 0; });
    if (!started) {
      // The shell's URL names the route; else this view's own URL, if it names one.
      var route = named || !location.search ? routeFromNodeParams() : routeFromLocation();
      start(route);
      if (!named && location.search) {
        sentParams.push({ key: paramsKey(routeParams(current)), at: Date.now() });
        LuigiClient.addNodeParams(routeParams(current), false);
      }
    } else if (current) {
      // Started alone before the shell answered: move the route into the shell's URL.
      sentParams.push({ key: paramsKey(routeParams(current)), at: Date.now() });
      LuigiClient.addNodeParams(routeParams(current), false);
    }
  }

  // Nothing is drawn before the texts are in: in the shell, in the shell's language (which comes with
  // Luigi's init); alone, or when the shell does not answer in time, in the browser's.
  var initSeen = false;
  if (window.LuigiClient) {
    LuigiClient.addInitListener(function (context, origin) {
      // Only the shell on this origin may talk to this view (Luigi's micro-frontend security guideline).
      if (origin !== location.origin) return;
      initSeen = true;
      translate(shellLocale()).then(function (changed) {
        // The context as it is now (an update may have come while the texts loaded).
        var latest = context;
        try { latest = LuigiClient.getContext() || context; } catch (error) { /* the init's */ }
        if (!inLuigi) enterLuigi(latest);
        else {
          onContext(latest);
          if (changed) redraw();
        }
        readyForLuigi();
      });
    }, true);
    LuigiClient.addContextUpdateListener(function (context) {
      if (!inLuigi) return;
      onContext(context);
      nodeParamsChanged();
      // The shell's language may have changed.
      translate(shellLocale()).then(function (changed) { if (changed) redraw(); });
    });
  }
  function startAlone() {
    // (Should the shell's init come while these texts load, it starts the view itself.)
    translate(browserLocale()).then(function () { if (!initSeen) start(); });
  }
  // In the shell, wait (briefly) for Luigi's context: its URL may name the entity to show. Alone, start now.
  if (window.parent !== window && window.LuigiClient) setTimeout(function () { if (!initSeen) startAlone(); }, LUIGI_INIT_WAIT_MS);
  else startAlone();
})();
