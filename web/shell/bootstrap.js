// portico shell bootstrap: fetches the signed-in user's Luigi config (built and role-filtered on the
// server), adds the few parts Luigi only accepts as functions, and starts Luigi. Static, so the shell's
// CSP can stay `script-src 'self'`. It holds no token: the session lives in an HttpOnly cookie.
//
// What it adds (Luigi 2.31; Luigi's own sources ship in its luigi.js.map):
// - iframe titles (`settings.iframeCreationInterceptor`), the document title and the recently used
//   apps (`navigation.nodeChangeHook`, called after each navigation with the node navigated to);
// - breadcrumbs (`navigation.breadcrumbs`), rendered as an accessible `<nav><ol>`;
// - a frame watchdog: an app that loads Luigi Client but has not started it within
//   `portico.frameTimeoutMs` gets a panel saying what is probably wrong instead of an endless spinner;
// - health-aware navigation: an app the server's health watch finds not answering
//   (`context.app.degraded`) opens to a panel saying so, since when, and whose it is, with "Try anyway"
//   instead of a spinner waiting for a frame that will not come (the side navigation's "Degraded"
//   badge is the server's `statusBadge`); the marks follow the watch while the shell is open
//   (`followMarks`);
// - `routing.pageNotFoundHandler`: an unknown or forbidden path shows the hidden `/home/_not-found`
//   view (web/shell/not-found.js) and keeps the address the user asked for.
// - `globalSearch`: the shell bar's search over the user's apps, their pages and (with a Backstage
//   catalog) the tenant's catalog entities, opened by its button or the keys "/" and Ctrl+K (⌘K);
//   see "Global search" below.
// Every text the shell writes itself comes from the `shell` texts of web/shell/i18n/<locale>.json in
// the language the server chose (`<html lang>`); the navigation's labels come translated from the server.
(function () {
  'use strict';

  var HOME_SEGMENT = 'home';
  var NOT_FOUND_SEGMENT = '_not-found';
  var NOT_FOUND_PATH = '/' + HOME_SEGMENT + '/' + NOT_FOUND_SEGMENT;
  /** Where the path that was not found waits for the not-found view (sessionStorage, this tab). */
  var NOT_FOUND_KEY = 'portico.notFoundPath';
  /** The first message Luigi Client sends its shell: the handshake has started, the app is alive. */
  var CLIENT_HELLO = 'luigi.get-context';
  var DEFAULT_FRAME_TIMEOUT_MS = 10000;
  var RECENT_MAX = 8;
  /** The shell's texts in the user's language (web/shell/i18n.js), set before `start` runs. */
  var i18n = null;
  /** The global search's keyboard shortcut (a keydown listener), for portico's own views' documents too. */
  var searchShortcut = null;

  function signIn() {
    var here = location.pathname + location.search + location.hash;
    location.assign('/auth/login?return_to=' + encodeURIComponent(here));
  }

  /** A number as the user's language writes it (`1.234,5` in German). */
  function number(value, options) {
    return Number(value).toLocaleString(i18n ? i18n.locale : 'en', options);
  }

  /** The plural form of `key` (`key.one`, `key.other`, … as the language's rules pick) for `count`,
   *  with `{count}` written as the language writes numbers. */
  function plural(key, count, vars) {
    var category = 'other';
    try { category = new Intl.PluralRules(i18n.locale).select(count); } catch (e) { /* no Intl: other */ }
    var chosen = i18n.has(key + '.' + category) ? key + '.' + category : key + '.other';
    return i18n.t(chosen, Object.assign({ count: number(count) }, vars));
  }

  /** `text` with its `{name}` placeholder replaced by the element `node` (e.g. a `<code>`), as nodes. */
  function withElement(text, name, node) {
    var parts = String(text).split('{' + name + '}');
    var fragment = document.createDocumentFragment();
    parts.forEach(function (part, i) {
      if (i > 0) fragment.appendChild(node.cloneNode(true));
      if (part) fragment.appendChild(document.createTextNode(part));
    });
    return fragment;
  }

  /** The shell's own texts before Luigi starts: the user's language when its texts loaded, else
   *  English (`english`), so that an error is never shown as a key. */
  function earlyText(translator, key, vars, english) {
    if (translator && translator.has(key)) return translator.t(key, vars);
    return english.replace(/\{([A-Za-z0-9_]+)\}/g, function (whole, name) {
      return vars && Object.prototype.hasOwnProperty.call(vars, name) ? String(vars[name]) : whole;
    });
  }

  function showError(message) {
    var box = document.createElement('div');
    box.className = 'portico-fatal';
    box.setAttribute('role', 'alert');
    box.textContent = message;
    document.body.appendChild(box);
    var loading = document.querySelector('[luigi-app-loading-indicator]');
    if (loading) loading.remove();
  }

  function signOut(csrfToken) {
    return fetch('/auth/logout', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'X-Portico-CSRF': csrfToken, 'Accept': 'application/json' }
    })
      .then(function (response) { return response.json().catch(function () { return {}; }); })
      .then(function (body) { location.assign(body.redirect || '/auth/login'); })
      .catch(function () { location.assign('/auth/login'); });
  }

  function element(tag, attributes, text) {
    var el = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) { el.setAttribute(name, attributes[name]); });
    if (text !== undefined) el.textContent = text;
    return el;
  }

  // ---- Nodes: what a navigation node is called, and where it lives ----

  /** The app a node belongs to (its own context says so for every app entry), or null. */
  function appOf(node) {
    return (node && node.context && node.context.app) || null;
  }

  function isHome(node) {
    return !!node && node.pathSegment === HOME_SEGMENT && !(node.parent && node.parent.pathSegment);
  }

  /** The node's shell path, from its parents (Luigi binds `parent` on every node it resolved); null
   * for a dynamic or virtual-tree node, whose segments are placeholders. */
  function nodePath(node) {
    var segments = [];
    for (var n = node; n; n = n.parent) {
      if (n.pathSegment) segments.unshift(n.pathSegment);
    }
    if (!segments.length || segments.some(function (segment) { return segment.charAt(0) === ':'; })) return null;
    return '/' + segments.join('/');
  }

  /** Page and app labels, the page left out when it is the app itself. */
  function labelsOf(node) {
    if (!node) return [];
    // The server sends the home entry's label in the user's language; the shell's own word otherwise.
    if (isHome(node)) return [node.label || i18n.t('shell.home')];
    var app = appOf(node);
    // A path inside an app's virtual tree (`:virtualSegment_N`): the app's own business, named by the app.
    if (node._virtualTree || String(node.label || '').charAt(0) === ':') return app ? [app.label] : [];
    var label = node.label || node.pathSegment || '';
    if (!app) return label ? [label] : [];
    return label && label !== app.label ? [label, app.label] : [app.label];
  }

  // ---- Shell: Luigi's config plus the function-valued parts ----

  window.addEventListener('message', function (event) {
    // An app's iframe that finds the session gone asks the shell to sign in again (see session-ended.js).
    if (event.origin === location.origin && event.data && event.data.portico === 'session-ended') signIn();
  });

  function start(shell) {
    var config = shell.luigi;
    var user = shell.portico.user;
    var global = config.navigation.globalContext || {};
    var tenant = global.tenant || {};
    var frameTimeoutMs = Number(shell.portico.frameTimeoutMs) > 0 ? Number(shell.portico.frameTimeoutMs) : DEFAULT_FRAME_TIMEOUT_MS;

    config.navigation.profile.staticUserInfoFn = function () { return Promise.resolve(user); };
    config.navigation.profile.logout.customLogoutFn = function () { signOut(shell.portico.csrfToken); };
    window.portico = { csrfToken: shell.portico.csrfToken, signOut: function () { return signOut(shell.portico.csrfToken); } };

    var watchdog = frameWatchdog(frameTimeoutMs);
    var degraded = degradedPanel(watchdog);

    config.settings.iframeCreationInterceptor = function (iframe, viewGroup, navigationNode, microFrontendType) {
      iframe.title = frameTitle(navigationNode);
      // A degraded app gets its panel at once; the watchdog watches it only once the user tries it.
      if (microFrontendType === 'main' && !degraded.show(iframe, navigationNode)) watchdog.watch(iframe, navigationNode);
      iframe.addEventListener('load', function () { listenForShortcut(iframe); });
    };

    config.navigation.nodeChangeHook = function (previous, next) {
      showAskedAddress(next);
      var title = labelsOf(next).concat(tenant.title ? [tenant.title] : []).join(' · ');
      if (title) setDocumentTitle(title);
      // A frame that Luigi reuses for another page of the same app keeps its element: rename it.
      var active = activeFrame();
      if (active) active.title = frameTitle(next);
      watchdog.navigated();
      degraded.navigated(next);
      rememberApp(appOf(next), tenant.id, global.user && global.user.id);
    };

    config.navigation.breadcrumbs = {
      autoHide: true,
      omitRoot: false,
      clearBeforeRender: true,
      pendingItemLabel: '…',
      renderer: renderBreadcrumbs
    };

    // Luigi calls this for a path it cannot map, from two places (2.31, services/routing.js and
    // App.svelte): its router, with the path of the address bar without a leading slash, and a
    // navigate() call, with the target path with one.
    var pendingAddress = null;
    config.routing.pageNotFoundHandler = function (wrongPath) {
      var raw = String(wrongPath || '');
      var asked = ('/' + raw.replace(/^\/+/, '')).split('#')[0];
      // The not-found view itself missing would loop: go home instead.
      if (asked.split('?')[0] === NOT_FOUND_PATH) return { redirectTo: '/' + HOME_SEGMENT };
      // The view reads the path from the shell's address; this covers a moment where it does not show it.
      try { sessionStorage.setItem(NOT_FOUND_KEY, asked.split('?')[0]); } catch (e) { /* storage off */ }
      if (raw.charAt(0) !== '/') {
        // The address bar shows the path already (a link, a reload, back or forward): keep it, and
        // route this history entry to the not-found view. Luigi's own `keepURL: true` does not work
        // for a path below an existing node in 2.31 (handlePageNotFound drops the shell's iframe
        // bookkeeping, so the view never gets its context and Luigi's spinner never ends); a route
        // change for `history.state.path`, which Luigi's router prefers to the address, does.
        history.replaceState(Object.assign({}, history.state, { path: NOT_FOUND_PATH }), '', location.href);
        window.postMessage({ msg: 'refreshRoute' }, location.origin);
        return { ignoreLuigiErrorHandling: true };
      }
      // navigate() to a path that does not exist: Luigi goes to the view, and nodeChangeHook then
      // shows the path that was asked for in the address bar.
      pendingAddress = asked;
      return { redirectTo: NOT_FOUND_PATH };
    };
    function showAskedAddress(next) {
      if (!pendingAddress) return;
      if (next && next.pathSegment === NOT_FOUND_SEGMENT && location.pathname === NOT_FOUND_PATH) {
        history.replaceState(Object.assign({}, history.state, { path: NOT_FOUND_PATH }), '', pendingAddress);
      }
      pendingAddress = null;
    }

    // Global search (see "Global search" below): at the root of Luigi's config, beside `navigation`.
    config.globalSearch = globalSearch(config);

    // Luigi's i18n: its own texts (`luigi.*`) from portico's files, and the language for every view
    // and micro-app (Luigi Client's getCurrentLocale). Labels from config come translated already.
    config.settings.customTranslationImplementation = function () {
      return { getTranslation: function (key, interpolations) { return i18n.has(key) ? i18n.t(key, interpolations) : key; } };
    };

    repairLuigiMarkup();
    Luigi.setConfig(config);
    Luigi.i18n().setCurrentLocale(i18n.locale);
    var refreshMs = Number(shell.portico.healthRefreshMs);
    if (refreshMs > 0) followMarks(config, refreshMs);
  }

  /**
   * Health-aware navigation, live: while the tenant's apps are watched (`portico.healthRefreshMs`,
   * the watch's interval), the shell asks for its config again at that pace and moves each app's
   * marks (`statusBadge`; `context.app.degraded`, which the panel reads when the app is opened; the
   * launchpad's summary, read when home is opened) onto the running navigation, re-rendering it only
   * when a mark changed. Not while the tab is hidden; a failed read is skipped, not shown.
   */
  function followMarks(config, refreshMs) {
    var home = config.navigation.nodes[0];
    function marksOf(node) {
      var app = node.context && node.context.app;
      return JSON.stringify([node.statusBadge || null, (app && app.degraded) || null]);
    }
    function apply(fresh) {
      var freshHome = fresh && fresh.luigi && fresh.luigi.navigation.nodes[0];
      if (!freshHome) return;
      var byId = {};
      (freshHome.children || []).forEach(function (node) {
        var app = node.context && node.context.app;
        if (app && !node.context.view) byId[app.id] = node;
      });
      var changed = false;
      (home.children || []).forEach(function (node) {
        var app = node.context && node.context.app;
        if (!app || node.context.view) return;
        var next = byId[app.id];
        if (!next || marksOf(node) === marksOf(next)) return;
        changed = true;
        if (next.statusBadge) node.statusBadge = next.statusBadge; else delete node.statusBadge;
        app.degraded = next.context.app.degraded;
      });
      var summaries = home.context && home.context.apps;
      var freshSummaries = freshHome.context && freshHome.context.apps;
      if (summaries && freshSummaries) {
        summaries.forEach(function (summary) {
          var next = freshSummaries.filter(function (other) { return other.id === summary.id; })[0];
          if (next) summary.degraded = next.degraded;
        });
      }
      if (changed) Luigi.configChanged('navigation');
    }
    setInterval(function () {
      if (document.hidden) return;
      fetch('/shell/config.json', { credentials: 'same-origin', headers: { 'Accept': 'application/json' } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(apply, function () { /* offline or restarting: the next round tries again */ });
    }, refreshMs);
  }

  /**
   * An entry of Luigi's phone overflow menu that is an `a` without href (Luigi 2.31 opens it on click
   * only): focusable, a button to assistive technology, and Enter or Space clicks it. Once per element.
   */
  function keyboardReachable(anchor) {
    if (!anchor || anchor.hasAttribute('tabindex')) return;
    anchor.setAttribute('tabindex', '0');
    anchor.setAttribute('role', 'button');
    anchor.addEventListener('keydown', function (event) {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        anchor.click();
      }
    });
  }

  /**
   * Small accessibility repairs of Luigi's own markup (2.31), applied whenever Luigi renders it: the
   * shellbar's overflow menu (on narrow screens) is a nameless icon button inside a `div` that also
   * says it is a button (axe: button-name, aria-command-name, nested-interactive).
   */
  function repairLuigiMarkup() {
    function repair() {
      document.querySelectorAll('.fd-shellbar-collapse--control[role="button"]').forEach(function (wrapper) {
        wrapper.removeAttribute('role');
        wrapper.removeAttribute('aria-expanded');
        wrapper.removeAttribute('aria-haspopup');
      });
      // With real hrefs (navigation.addNavHrefs) the branding block is a "button" holding two hidden
      // links (axe: nested-interactive): keep the title as the one real link home.
      document.querySelectorAll('.fd-shellbar__branding[role="button"]').forEach(function (branding) {
        branding.removeAttribute('role');
        branding.removeAttribute('tabindex');
        branding.removeAttribute('aria-label');
        var title = branding.querySelector('a.fd-shellbar__title');
        if (title) {
          title.removeAttribute('aria-hidden');
          title.removeAttribute('tabindex');
        }
      });
      // Luigi's loading indicator names itself with aria-label on a role-less div (axe:
      // aria-prohibited-attr, seen while a view loads): it is a status.
      document.querySelectorAll('.fd-busy-indicator[aria-label]:not([role])').forEach(function (busy) {
        busy.setAttribute('role', 'status');
      });
      // The overflow menu's other entry that is an `a` without href: the product switcher (phone).
      keyboardReachable(document.querySelector('a[data-testid="mobile-product-switcher"]'));
      document.querySelectorAll('button[aria-controls="overflowPopover"]:not([aria-label])').forEach(function (button) {
        button.setAttribute('aria-label', i18n.t('shell.more'));
      });
    }
    var scheduled = false;
    new MutationObserver(function () {
      if (scheduled) return;
      scheduled = true;
      requestAnimationFrame(function () { scheduled = false; repair(); });
    }).observe(document.body, { childList: true, subtree: true });
  }

  /**
   * Luigi writes document.title itself whenever its header updates: its header title, unless
   * `ux().setDocumentTitle` gave it another. That call also re-runs Luigi's whole header setup (logo,
   * favicon) on every navigation, so the title goes straight into the store it reads when there is
   * one (Luigi 2.31's `ux().documentTitle`), and through the public call otherwise.
   */
  function setDocumentTitle(title) {
    try {
      var ux = Luigi.ux();
      if (ux.documentTitle && typeof ux.documentTitle.set === 'function') ux.documentTitle.set(title);
      else ux.setDocumentTitle(title);
    } catch (e) { /* the assignment below still names the page */ }
    document.title = title;
  }

  /**
   * The search shortcut works in portico's own views too (home, my access, not found: same origin,
   * under /shell/), where the focus is after a click in them; an app's frame keeps its keys.
   */
  function listenForShortcut(iframe) {
    try {
      var view = iframe.contentWindow;
      if (!searchShortcut || !view || view.location.origin !== location.origin || view.location.pathname.indexOf('/shell/') !== 0) return;
      view.document.addEventListener('keydown', searchShortcut);
    } catch (e) { /* another origin: the app's own keys */ }
  }

  /** `<page> – <app>`, as a screen reader announces the frame. */
  function frameTitle(node) {
    var labels = labelsOf(node);
    return labels.length ? labels.join(' – ') : i18n.t('shell.app');
  }

  /** The visible main iframe (Luigi hides, not removes, frames it keeps). */
  function activeFrame() {
    var frames = document.querySelectorAll('.iframeContainer > iframe');
    for (var i = 0; i < frames.length; i++) {
      if (frames[i].style.display !== 'none') return frames[i];
    }
    return null;
  }

  /**
   * The hidden home entry that explains unknown routes. The server sends it; this adds it only when
   * it is missing (an older server), and gives it a view group of its own: without one it would
   * inherit the home view's, and Luigi would reuse the home iframe for it without loading the view.
   */
  // ---- Recently used apps: the launchpad reads them (home.js) ----

  function rememberApp(app, tenantId, userId) {
    if (!app || !app.id || !tenantId || !userId) return;
    var key = 'portico.recent.' + tenantId + '.' + userId;
    try {
      var stored;
      try { stored = JSON.parse(localStorage.getItem(key) || '[]'); } catch (e) { stored = []; }
      if (!Array.isArray(stored)) stored = [];
      var recent = [app.id].concat(stored.filter(function (id) { return typeof id === 'string' && id !== app.id; }));
      localStorage.setItem(key, JSON.stringify(recent.slice(0, RECENT_MAX)));
    } catch (e) { /* storage unavailable or full: nothing to remember */ }
  }

  // ---- Breadcrumbs ----

  function renderBreadcrumbs(container, items) {
    container.classList.add('portico-breadcrumbs-host');
    var nav = element('nav', { 'aria-label': i18n.t('shell.breadcrumbs'), 'class': 'portico-breadcrumbs', 'data-testid': 'portico-breadcrumbs' });
    var list = element('ol');
    items.forEach(function (item, index) {
      var entry = element('li');
      if (index > 0) entry.appendChild(element('span', { 'class': 'portico-breadcrumbs-sep', 'aria-hidden': 'true' }, '›'));
      // Luigi's route has the values of dynamic segments; it is missing when the address has a query.
      var path = item.route || nodePath(item.node);
      if (index === items.length - 1 || !path) {
        entry.appendChild(element('span', { 'aria-current': 'page', 'class': 'portico-breadcrumbs-current' }, item.label));
      } else {
        var link = element('a', { href: path }, item.label);
        link.addEventListener('click', function (event) {
          // Modified clicks keep their meaning (new tab, new window): the link is a real one.
          if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
          event.preventDefault();
          Luigi.navigation().navigate(path);
        });
        entry.appendChild(link);
      }
      list.appendChild(entry);
    });
    nav.appendChild(list);
    container.appendChild(nav);
    return nav;
  }

  // ---- Frame watchdog ----

  /**
   * Watches the main iframe of a node that shows Luigi's loading indicator (that is, one whose app
   * says it loads Luigi Client): when Luigi Client has not said hello within `timeoutMs`, Luigi would
   * spin forever, so the watchdog ends the spinner and shows what is probably wrong, with a retry.
   */
  function frameWatchdog(timeoutMs) {
    var current = null; // { iframe, node, loaded, started, timer, panel, reason, path }

    window.addEventListener('message', function (event) {
      if (!current || !event.data || event.data.msg !== CLIENT_HELLO) return;
      if (event.source !== current.iframe.contentWindow) return;
      current.started = true;
      // A slow app that starts after all: it shows itself, the panel goes.
      removePanel(current);
    });

    function stop() {
      if (!current) return;
      clearTimeout(current.timer);
      removePanel(current);
      current = null;
    }

    function watch(iframe, node) {
      stop();
      if (!node || (node.loadingIndicator && node.loadingIndicator.enabled === false)) return;
      var watched = { iframe: iframe, node: node, loaded: false, started: false, panel: null, reason: null };
      iframe.addEventListener('load', function () {
        try {
          // An iframe's initial about:blank does not count as the app's page.
          if (iframe.contentWindow && iframe.contentWindow.location.href === 'about:blank') return;
        } catch (e) { /* another origin: it did load something */ }
        watched.loaded = true;
        // A page that arrives after the panel: the reason changes from "not answering".
        if (watched.reason) describe(watched);
      });
      watched.timer = setTimeout(function () {
        if (current !== watched || !iframe.isConnected) return;
        if (!watched.started) {
          showPanel(watched);
        } else if (document.querySelector('.spinnerContainer.appSpinner')) {
          // The app started but Luigi lost track of its frame: the spinner must end all the same.
          hideLuigiSpinner();
        }
      }, timeoutMs);
      current = watched;
    }

    /** After each navigation: a panel belongs to the page it was shown on. */
    function navigated() {
      if (current && current.panel && current.path !== location.pathname) removePanel(current);
    }

    function showPanel(watched) {
      var node = watched.node;
      var app = appOf(node);
      var name = app ? app.label : (node.label || i18n.t('shell.watchdog.thisPage'));
      var container = watched.iframe.parentNode;
      if (!container) return;

      var panel = element('div', { 'class': 'portico-frame-panel', 'role': 'alert', 'data-testid': 'portico-frame-panel' });
      var box = element('div', { 'class': 'portico-frame-panel-box' });
      box.appendChild(element('h2', {}, i18n.t('shell.watchdog.title', { name: name })));
      watched.reason = element('p', { 'data-testid': 'portico-frame-reason' });
      describe(watched);
      box.appendChild(watched.reason);
      if (app && app.owner) {
        box.appendChild(element('p', { 'data-testid': 'portico-frame-owner' }, i18n.t('shell.watchdog.owner', { owner: app.owner })));
      }
      box.appendChild(element('p', { 'class': 'portico-frame-panel-meta' }, i18n.t('shell.watchdog.waited', {
        seconds: number(timeoutMs / 1000, { maximumFractionDigits: 1 }),
        path: nodePath(node) || location.pathname
      })));
      var retry = element('button', { type: 'button', 'data-testid': 'portico-frame-retry' }, i18n.t('shell.watchdog.retry'));
      retry.addEventListener('click', function () {
        removePanel(watched);
        // Luigi handles the current route again; a frame that never finished its handshake is
        // replaced by a new one (and watched again). navigate() to the same path would do nothing.
        window.postMessage({ msg: 'refreshRoute' }, location.origin);
      });
      box.appendChild(retry);
      panel.appendChild(box);

      watched.panel = panel;
      watched.path = location.pathname;
      // Inside Luigi's iframe container, over the app area (Luigi only ever moves iframes there).
      container.appendChild(panel);
      hideLuigiSpinner();
    }

    /** What is probably wrong: the frame's `load` event tells a page without Luigi Client from no page. */
    function describe(watched) {
      var reason = watched.reason;
      reason.textContent = '';
      if (watched.loaded) {
        reason.appendChild(withElement(i18n.t('shell.watchdog.noClient'), 'setting', element('code', {}, 'luigi_client: false')));
      } else {
        reason.textContent = i18n.t('shell.watchdog.notAnswering');
      }
    }

    /** Ends Luigi's spinner: Luigi accepts this message from the shell's own window for the main area. */
    function hideLuigiSpinner() {
      window.postMessage({ msg: 'luigi.hide-loading-indicator', location: 'main' }, location.origin);
    }

    function removePanel(watched) {
      if (watched && watched.panel) {
        watched.panel.remove();
        watched.panel = null;
        watched.reason = null;
      }
    }

    return { watch: watch, navigated: navigated };
  }

  // ---- Degraded apps ----

  /** Why a degraded app is degraded, in the user's language (the server's English when the code is
   *  one this shell does not know). */
  function reasonText(mark) {
    var key = 'health.reason.' + mark.code;
    return i18n.has(key) ? i18n.t(key, { status: mark.status }) : String(mark.reason || '');
  }

  /**
   * The panel over the frame of an app the health watch finds not answering (`context.app.degraded`,
   * sent only for apps the user can see): its name, since when, why in a few words, its owner, and
   * "Try anyway", which loads the frame and hands it to the watchdog. Tried apps are not stopped again
   * on this page; a reload of the shell asks the server afresh.
   */
  function degradedPanel(watchdog) {
    var tried = Object.create(null);
    var current = null; // { app, panel }

    function remove() {
      if (current) current.panel.remove();
      current = null;
    }

    /** Shows the panel for `node`'s app in `iframe`'s place; whether it did. */
    function show(iframe, node) {
      remove();
      var app = appOf(node);
      var mark = app && app.degraded;
      if (!mark || tried[app.id]) return false;

      var panel = element('div', { 'class': 'portico-frame-panel', 'role': 'alert', 'data-testid': 'portico-degraded-panel' });
      var box = element('div', { 'class': 'portico-frame-panel-box' });
      box.appendChild(element('h2', {}, i18n.t('shell.degraded.title', { name: app.label })));
      box.appendChild(element('p', { 'data-testid': 'portico-degraded-reason' },
        i18n.t('shell.degraded.since', { time: i18n.when(mark.since), reason: reasonText(mark) })));
      box.appendChild(element('p', { 'data-testid': 'portico-degraded-owner' },
        app.owner ? i18n.t('shell.degraded.owner', { owner: app.owner }) : i18n.t('shell.degraded.noOwner')));
      box.appendChild(element('p', { 'class': 'portico-frame-panel-meta' }, i18n.t('shell.degraded.hint')));
      var retry = element('button', { type: 'button', 'data-testid': 'portico-degraded-try' }, i18n.t('shell.degraded.try'));
      retry.addEventListener('click', function () {
        tried[app.id] = true;
        remove();
        watchdog.watch(iframe, node);
        // Loads the view again (setting `src`, even to the same value, navigates the frame).
        var src = iframe.getAttribute('src');
        if (src) iframe.setAttribute('src', src);
      });
      box.appendChild(retry);
      panel.appendChild(box);
      var shown = { app: app.id, panel: panel };
      current = shown;
      // Luigi calls the interceptor before it puts the frame in its container: the panel joins it
      // there (over the app area, where Luigi only ever moves frames) once it is in place.
      var frames = 0;
      (function attach() {
        if (current !== shown) return;
        if (iframe.parentNode) {
          iframe.parentNode.appendChild(panel);
          // Luigi's spinner would wait for a handshake that will not come.
          window.postMessage({ msg: 'luigi.hide-loading-indicator', location: 'main' }, location.origin);
        } else if (frames++ < 300) {
          requestAnimationFrame(attach);
        }
      })();
      return true;
    }

    /** After each navigation: the panel stays while the user is in its app (its pages share the frame). */
    function navigated(next) {
      var app = appOf(next);
      if (current && (!app || app.id !== current.app)) remove();
    }

    return { show: show, navigated: navigated };
  }

  // ==== Global search ============================================================================
  //
  // Luigi's global search (`globalSearch` at the root of Luigi's config, beside `navigation`; Luigi
  // 2.31: navigation/GlobalSearch.svelte, utilities/helpers/global-search-helpers.js) over what this
  // user may open, and nothing else:
  // - apps: the app entries of the navigation the server sent (`context.app`), with the home node's
  //   `context.apps` for their description, category and owner;
  // - pages: the `link` shortcuts to an app's pages (`/home/<app>/<page>`); the hidden entries
  //   (`hideFromNav`, the not-found view) are never results;
  // - catalog entities, when the user has the Catalog app (`catalog`, there exactly when the tenant has a
  //   Backstage catalog for them): the same scoped GET the Catalog app makes (`/backstage/api/catalog/
  //   entities/by-query`, the session cookie, no token), debounced, the stale request aborted; a result
  //   opens the Catalog app on the entity (`/home/catalog?~entity=<ref>`, a Luigi node parameter).
  // The server leaves out of the navigation what the user may not open, so the search cannot name it.
  //
  // The results are our own popover (`customSearchResultRenderer`): an ARIA combobox. Focus stays in
  // the field; the arrow keys move the active option of a grouped listbox (Apps, Pages, Catalog),
  // Enter opens it (or the first result), Escape clears the field (and a second Escape closes it).
  // Luigi's own popover moves the focus into `li`s with `aria-selected` on a `role="button"` and cannot
  // group, say "nothing matches" (`showSearchResult([])` is refused) or update as results come.
  // Repairs of Luigi's markup: the field gets a name and the combobox role; its wrapper loses
  // `role="button"` (an input inside a button); the search button's `aria-expanded` says the opposite
  // of the truth in 2.31 (`!isSearchFieldVisible`) and is set right; the phone's "Search" entry of the
  // overflow menu (an `a` without href) becomes reachable by keyboard.

  var SEARCH_GROUP_MAX = 8;
  var SEARCH_DEBOUNCE_MS = 250;
  var SEARCH_CATALOG_MIN = 2;
  var CATALOG_APP_ID = 'catalog';
  var CATALOG_API = '/backstage/api/catalog/entities/by-query';
  // What the Catalog app searches and shows (web/demo-apps/catalog/catalog.js, SEARCH_FIELDS).
  var CATALOG_SEARCH_FIELDS = 'metadata.name,metadata.title,metadata.description,spec.type,spec.profile.displayName';
  var CATALOG_RESULT_FIELDS = 'kind,metadata.name,metadata.namespace,metadata.title,metadata.description,spec.type,spec.profile.displayName';
  var SEARCH_KIND_LABELS = { api: 'API' };

  /** Lower case, without accents: what matching compares. */
  function folded(text) {
    return String(text || '').toLowerCase().normalize('NFD').replace(/[\u0300-\u036f]/g, '');
  }

  /** The apps and pages of the navigation the server sent: all this user may open. */
  function searchIndex(config) {
    var home = config.navigation.nodes[0] || {};
    var base = '/' + (home.pathSegment || HOME_SEGMENT) + '/';
    var summaries = {};
    ((home.context && home.context.apps) || []).forEach(function (app) { if (app && app.id) summaries[app.id] = app; });
    var apps = [];
    var appsById = {};
    var pages = [];
    (home.children || []).forEach(function (node) {
      if (!node || node.hideFromNav || node.pathSegment === NOT_FOUND_SEGMENT) return;
      var app = appOf(node);
      if (app && app.id && !node.link) {
        var summary = summaries[app.id] || {};
        var entry = {
          id: app.id,
          label: node.label || app.label || app.id,
          description: summary.description || '',
          category: summary.category || node.category || '',
          owner: summary.owner || app.owner || '',
          path: summary.path || base + node.pathSegment
        };
        appsById[app.id] = entry;
        apps.push(entry);
      } else if (typeof node.link === 'string' && node.link.indexOf(base) === 0) {
        pages.push({ label: node.label || node.pathSegment, link: node.link, appId: node.link.slice(base.length).split('/')[0] });
      }
    });
    // A page of an app the user does not have (not sent; never expected) is left out with it.
    pages = pages.filter(function (page) { return appsById[page.appId]; }).map(function (page) {
      page.app = appsById[page.appId];
      return page;
    });
    return { apps: apps, pages: pages, catalog: appsById[CATALOG_APP_ID] || null };
  }

  /** How well `fields` ([text, weight]) match every word of `words`: 0 when a word matches none. A word
   *  at the start of a word of a field counts more than inside one; a word of one or two letters
   *  matches only there ("s" is in nearly every description). */
  function matchScore(fields, words) {
    var total = 0;
    for (var i = 0; i < words.length; i++) {
      var word = words[i];
      var best = 0;
      for (var j = 0; j < fields.length; j++) {
        var text = folded(fields[j][0]);
        for (var at = text.indexOf(word); at >= 0; at = text.indexOf(word, at + 1)) {
          var wordStart = at === 0 || /[^a-z0-9]/.test(text.charAt(at - 1));
          if (wordStart || word.length > 2) best = Math.max(best, fields[j][1] * (wordStart ? 2 : 1));
          if (wordStart) break;
        }
      }
      if (!best) return 0;
      total += best;
    }
    return total;
  }

  function bestMatches(entries, fieldsOf, words) {
    return entries
      .map(function (entry, index) { return { entry: entry, index: index, score: matchScore(fieldsOf(entry), words) }; })
      .filter(function (scored) { return scored.score > 0; })
      .sort(function (a, b) { return b.score - a.score || a.index - b.index; })
      .slice(0, SEARCH_GROUP_MAX)
      .map(function (scored) { return scored.entry; });
  }

  function searchLocal(index, term) {
    var words = folded(term).split(/\s+/).filter(Boolean);
    if (!words.length) return [];
    var apps = bestMatches(index.apps, function (app) {
      return [[app.label, 4], [app.category, 1], [app.owner, 1], [app.description, 1]];
    }, words).map(function (app) {
      // The description, unless the app matched by its category or owner: then those, to say why.
      var byText = app.description && matchScore([[app.label, 1], [app.description, 1]], words) > 0;
      var facts = [app.category, app.owner ? i18n.t('shell.search.ownedBy', { owner: app.owner }) : ''].filter(Boolean).join(' \u00b7 ');
      return {
        group: 'apps', key: 'app:' + app.id, label: app.label,
        description: byText ? app.description : facts || app.description,
        pathObject: { link: app.path }
      };
    });
    var pages = bestMatches(index.pages, function (page) {
      return [[page.label, 4], [page.app.label, 1]];
    }, words).map(function (page) {
      return { group: 'pages', key: 'page:' + page.link, label: page.label, description: i18n.t('shell.search.pageOf', { app: page.app.label }), pathObject: { link: page.link } };
    });
    return apps.concat(pages);
  }

  /** A catalog entity as a result: it opens the Catalog app on the entity. */
  function entityResult(entity, catalogPath) {
    var metadata = entity.metadata || {};
    var spec = entity.spec || {};
    var kind = String(entity.kind || '');
    var namespace = String(metadata.namespace || 'default');
    var name = String(metadata.name || '');
    var ref = kind.toLowerCase() + ':' + namespace.toLowerCase() + '/' + name;
    var label = String(metadata.title || (spec.profile && spec.profile.displayName) || name);
    var kindLabel = SEARCH_KIND_LABELS[kind.toLowerCase()] || kind;
    if (typeof spec.type === 'string' && spec.type) kindLabel += ' (' + spec.type + ')';
    var where = label === name ? namespace : namespace + '/' + name;
    var description = [kindLabel, where, typeof metadata.description === 'string' ? metadata.description : '']
      .filter(Boolean).join(' · ');
    return { group: 'catalog', key: 'entity:' + ref, label: label, description: description, pathObject: { link: catalogPath, params: { entity: ref } } };
  }

  /** `globalSearch` of Luigi's config. */
  function globalSearch(config) {
    var index = searchIndex(config);
    var catalog = index.catalog;
    var fieldName = i18n.t(catalog ? 'shell.search.labelCatalog' : 'shell.search.label');
    var menuEntry = i18n.t('shell.search.menuEntry');
    var mac = /Mac|iPhone|iPad|iPod/.test(navigator.platform || navigator.userAgent || '');
    var SHORTCUT = {
      mac: mac,
      keys: mac ? '/ Meta+K' : '/ Control+K',
      hint: i18n.t('shell.search.shortcutHint', { label: fieldName, combo: i18n.t(mac ? 'shell.search.cmdK' : 'shell.search.ctrlK') })
    };
    var GROUPS = [['apps', i18n.t('shell.search.apps')], ['pages', i18n.t('shell.search.pages')], ['catalog', catalog ? catalog.label : i18n.t('shell.search.catalog')]];
    // term: what the results are for; catalog: { state: off|idle|loading|done|error, items, total }.
    var state = { term: '', local: [], catalog: { state: catalog ? 'idle' : 'off', items: [], total: 0 }, active: null, enter: false };
    var timer = null;
    var request = null;
    var seq = 0;
    var input = null;
    var popover = null;
    var announcer = null;
    var announceTimer = null;

    function searchApi() { return Luigi.globalSearch(); }

    function fieldValue() { return input ? input.value.trim() : ''; }

    /** The term in the field changed (typed, pasted, cleared): search again. */
    function update() {
      var term = fieldValue();
      if (term === state.term) return;
      state.term = term;
      state.active = null;
      state.enter = false;
      clearTimeout(timer);
      if (request) request.abort();
      request = null;
      if (!term) {
        state.local = [];
        if (catalog) state.catalog = { state: 'idle', items: [], total: 0 };
        close();
        return;
      }
      state.local = searchLocal(index, term);
      if (catalog) {
        if (term.length < SEARCH_CATALOG_MIN) {
          state.catalog = { state: 'idle', items: [], total: 0 };
        } else {
          state.catalog = { state: 'loading', items: [], total: 0 };
          timer = setTimeout(function () { searchCatalog(term); }, SEARCH_DEBOUNCE_MS);
        }
      }
      render();
    }

    function searchCatalog(term) {
      clearTimeout(timer);
      timer = null;
      var mine = ++seq;
      var controller = new AbortController();
      request = controller;
      var query = new URLSearchParams([
        ['fullTextFilterTerm', term], ['fullTextFilterFields', CATALOG_SEARCH_FIELDS],
        ['orderField', 'metadata.name,asc'], ['limit', String(SEARCH_GROUP_MAX)], ['fields', CATALOG_RESULT_FIELDS]
      ]);
      fetch(CATALOG_API + '?' + query.toString(), {
        credentials: 'same-origin', headers: { 'Accept': 'application/json' }, signal: controller.signal
      })
        .then(function (response) {
          if (!response.ok) throw new Error('HTTP ' + response.status);
          return response.json();
        })
        .then(function (body) {
          if (mine !== seq || term !== state.term) return;
          var items = (body && Array.isArray(body.items) ? body.items : []).filter(function (entity) {
            return entity && entity.kind && entity.metadata && entity.metadata.name;
          });
          state.catalog = {
            state: 'done',
            items: items.slice(0, SEARCH_GROUP_MAX).map(function (entity) { return entityResult(entity, catalog.path); }),
            total: typeof body.totalItems === 'number' ? body.totalItems : items.length
          };
          finished();
        })
        .catch(function (error) {
          if ((error && error.name === 'AbortError') || mine !== seq || term !== state.term) return;
          state.catalog = { state: 'error', items: [], total: 0 };
          finished();
        });
      function finished() {
        if (request === controller) request = null;
        if (fieldValue() !== term) return;
        render();
        if (state.enter) openFirst();
      }
    }

    /** Every result in the order shown, with the "all matches" entry of the catalog when it has more. */
    function results() {
      var list = state.local.slice();
      if (state.catalog.state === 'done') {
        list = list.concat(state.catalog.items);
        if (state.catalog.total > state.catalog.items.length) {
          list.push({
            group: 'catalog', key: 'catalog-all', more: true,
            label: i18n.t('shell.search.allMatches', { count: number(state.catalog.total) }),
            description: i18n.t('shell.search.openWithSearch', { catalog: catalog.label }),
            pathObject: { link: catalog.path, params: { q: state.term } }
          });
        }
      }
      return list;
    }

    function render() {
      if (!state.term || fieldValue() !== state.term) return;
      var list = results();
      if (state.active && !list.some(function (item) { return item.key === state.active; })) state.active = null;
      // Luigi calls the renderer only for a list that is not empty; the marker stands for "none".
      searchApi().showSearchResult(list.length ? list : [{ key: 'none', label: '', pathObject: { link: '' } }]);
      announce(list);
    }

    function emptyMessage() {
      var key = catalog && state.catalog.state !== 'error' ? 'shell.search.noMatchCatalog' : 'shell.search.noMatch';
      return i18n.t(key, { term: state.term });
    }

    /** Luigi's `customSearchResultRenderer`: the popover, in Luigi's slot (emptied by Luigi on close). */
    function renderPopover(items, slot) {
      items = items.filter(function (item) { return item.key !== 'none'; });
      if (!popover) {
        popover = element('div', { 'class': 'portico-search', 'data-testid': 'portico-search' });
        // A click in the popover must not take the focus out of the field.
        popover.addEventListener('mousedown', function (event) { event.preventDefault(); });
        popover.addEventListener('click', function (event) {
          var option = event.target.closest('[role="option"]');
          if (!option) return;
          var item = results().filter(function (candidate) { return candidate.key === option.dataset.key; })[0];
          if (item) select(item);
        });
      }
      popover.textContent = '';
      var listbox = element('div', { role: 'listbox', id: 'portico-search-listbox', 'aria-label': i18n.t('shell.search.resultsLabel'), 'data-testid': 'portico-search-listbox' });
      var any = false;
      GROUPS.forEach(function (pair) {
        var group = items.filter(function (item) { return item.group === pair[0]; });
        if (!group.length) return;
        any = true;
        var labelId = 'portico-search-group-' + pair[0];
        var box = element('div', { role: 'group', 'aria-labelledby': labelId, 'class': 'portico-search-group', 'data-testid': 'portico-search-group-' + pair[0] });
        box.appendChild(element('div', { id: labelId, role: 'presentation', 'class': 'portico-search-group-label' }, pair[1]));
        group.forEach(function (item) {
          var option = element('div', {
            role: 'option', id: 'portico-search-option-' + optionId(item.key), 'class': 'portico-search-option' + (item.more ? ' portico-search-more' : ''),
            'aria-selected': String(item.key === state.active), 'data-key': item.key, 'data-testid': 'portico-search-option'
          });
          option.appendChild(element('span', { 'class': 'portico-search-option-label' }, item.label));
          if (item.description) option.appendChild(element('span', { 'class': 'portico-search-option-description' }, item.description));
          box.appendChild(option);
        });
        listbox.appendChild(box);
      });
      if (any) popover.appendChild(listbox);
      var status = element('div', { 'class': 'portico-search-status', 'data-testid': 'portico-search-status' });
      if (catalog && state.catalog.state === 'loading') {
        status.appendChild(element('p', { 'class': 'portico-search-loading', 'data-testid': 'portico-search-loading' }, i18n.t('shell.search.searching', { catalog: catalog.label })));
      }
      if (!any && state.catalog.state !== 'loading') status.appendChild(element('p', { 'class': 'portico-search-empty', 'data-testid': 'portico-search-empty' }, emptyMessage()));
      if (catalog && state.catalog.state === 'error') {
        status.appendChild(element('p', { 'class': 'portico-search-unavailable', 'data-testid': 'portico-search-unavailable' }, i18n.t('shell.search.unavailable')));
      }
      if (status.childNodes.length) popover.appendChild(status);
      slot.textContent = '';
      slot.appendChild(popover);
      // Expanded: the listbox is there (a message alone is not a popup of options; the announcer says it).
      setExpanded(any);
      showActive();
    }

    /** Option ids: the key, reduced to what an id may hold. */
    function optionId(key) {
      return key.replace(/[^A-Za-z0-9_-]/g, function (c) { return '_' + c.charCodeAt(0).toString(16); });
    }

    function isOpen() { return !!(popover && popover.isConnected); }

    function close() {
      try { searchApi().closeSearchResult(); } catch (e) { /* Luigi not ready */ }
      setExpanded(false);
    }

    function setExpanded(open) {
      if (!input) return;
      input.setAttribute('aria-expanded', String(open));
      if (open) input.setAttribute('aria-controls', 'portico-search-listbox');
      else {
        input.removeAttribute('aria-controls');
        input.removeAttribute('aria-activedescendant');
      }
    }

    /** The active option: marked, scrolled to, and the field's aria-activedescendant. */
    function showActive() {
      if (!popover) return;
      var current = null;
      popover.querySelectorAll('[role="option"]').forEach(function (option) {
        var on = option.dataset.key === state.active;
        option.setAttribute('aria-selected', String(on));
        if (on) current = option;
      });
      if (current && input) {
        input.setAttribute('aria-activedescendant', current.id);
        current.scrollIntoView({ block: 'nearest' });
      } else if (input) {
        input.removeAttribute('aria-activedescendant');
      }
    }

    function move(step) {
      var list = results();
      if (!list.length) return;
      if (!isOpen()) render();
      var at = -1;
      list.forEach(function (item, i) { if (item.key === state.active) at = i; });
      at = at < 0 ? (step > 0 ? 0 : list.length - 1) : (at + step + list.length) % list.length;
      state.active = list[at].key;
      showActive();
    }

    function openFirst() {
      state.enter = false;
      var list = results();
      var chosen = list.filter(function (item) { return item.key === state.active; })[0] || list[0];
      if (chosen) select(chosen);
    }

    /** Luigi's `onSearchResultItemSelected`, and ours: open the result, leave the search. */
    function select(item) {
      if (!item || !item.pathObject || !item.pathObject.link) return;
      var path = item.pathObject;
      clearTimeout(timer);
      if (request) request.abort();
      request = null;
      searchApi().clearSearchField();
      state.term = '';
      state.local = [];
      state.active = null;
      setExpanded(false);
      if (window.matchMedia('(max-width: 1024px)').matches) searchApi().closeSearchField();
      var navigation = Luigi.navigation();
      if (path.params) navigation = navigation.withParams(path.params);
      navigation.navigate(path.link);
    }

    /** A polite summary for screen readers, once the results settle. */
    function announce(list) {
      if (!announcer) {
        announcer = element('div', { 'class': 'portico-sr-only', role: 'status', 'data-testid': 'portico-search-announcer' });
        document.body.appendChild(announcer);
      }
      clearTimeout(announceTimer);
      announceTimer = setTimeout(function () {
        if (!state.term) { announcer.textContent = ''; return; }
        var text = list.length ? plural('shell.search.results', list.length) : (state.catalog.state === 'loading' ? '' : emptyMessage());
        if (state.catalog.state === 'loading') text += (text ? '; ' : '') + i18n.t('shell.search.announceSearching');
        if (state.catalog.state === 'error') text += '; ' + i18n.t('shell.search.announceUnavailable');
        announcer.textContent = text;
      }, 400);
    }

    /** Our part of the field, once Luigi has drawn it (and again if it draws it anew). */
    function adopt(field) {
      if (field === input) return;
      input = field;
      input.setAttribute('aria-label', fieldName);
      input.setAttribute('role', 'combobox');
      input.setAttribute('aria-autocomplete', 'list');
      input.setAttribute('aria-expanded', 'false');
      input.setAttribute('autocomplete', 'off');
      input.setAttribute('spellcheck', 'false');
      input.setAttribute('enterkeyhint', 'go');
      input.setAttribute('aria-keyshortcuts', SHORTCUT.keys);
      input.setAttribute('title', SHORTCUT.hint);
      // Luigi calls onInput on keyup only; typing is not the only way to change the field.
      input.addEventListener('input', update);
      // The focus leaving the field (Tab, another control) closes the results; they come back with it.
      // A click in the results keeps the focus in the field (mousedown is prevented there).
      input.addEventListener('blur', function () {
        setTimeout(function () { if (document.activeElement !== input && isOpen()) close(); }, 0);
      });
      input.addEventListener('focus', function () {
        if (fieldValue() !== state.term) update();
        else if (state.term && !isOpen()) render();
      });
      input.addEventListener('keydown', function (event) {
        if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
          event.preventDefault();
          if (fieldValue() !== state.term) update();
          move(event.key === 'ArrowDown' ? 1 : -1);
        }
      });
    }

    // Luigi 2.31 handles the field's keyup: Enter, Escape and ArrowDown (which looks for its own
    // popover's first item, absent with a custom renderer) and onInput for any other key. Arrows are ours.
    document.addEventListener('keyup', function (event) {
      if (input && event.target === input && (event.key === 'ArrowDown' || event.key === 'ArrowUp')) event.stopPropagation();
    }, true);

    function repair() {
      var field = document.querySelector('input[data-testid="luigi-search-input"]');
      if (field) adopt(field);
      document.querySelectorAll('.fd-popover__control.luigi-search[role="button"]').forEach(function (wrapper) {
        wrapper.removeAttribute('role');
        wrapper.removeAttribute('aria-haspopup');
      });
      var wrapper = document.querySelector('.fd-popover__control.luigi-search');
      var shown = !!wrapper && wrapper.getAttribute('aria-hidden') === 'false';
      var button = document.querySelector('[data-testid="luigi-search-btn-desktop"]');
      if (button) {
        if (button.getAttribute('aria-expanded') !== String(shown)) button.setAttribute('aria-expanded', String(shown));
        if (button.hasAttribute('aria-haspopup')) button.removeAttribute('aria-haspopup');
        if (button.getAttribute('aria-label') !== fieldName) button.setAttribute('aria-label', fieldName);
        if (button.getAttribute('aria-keyshortcuts') !== SHORTCUT.keys) button.setAttribute('aria-keyshortcuts', SHORTCUT.keys);
        if (button.getAttribute('title') !== SHORTCUT.hint) button.setAttribute('title', SHORTCUT.hint);
      }
      // The phone's overflow menu names the entry in English whatever the language (Luigi 2.31).
      document.querySelectorAll('[data-testid="luigi-search-btn-mobile"] .fd-menu__title').forEach(function (title) {
        if (title.textContent !== menuEntry) title.textContent = menuEntry;
      });
      keyboardReachable(document.querySelector('a[data-testid="luigi-search-btn-mobile"]'));
    }
    var scheduled = false;
    new MutationObserver(function () {
      if (scheduled) return;
      scheduled = true;
      requestAnimationFrame(function () { scheduled = false; repair(); });
    }).observe(document.body, { childList: true, subtree: true, attributes: true, attributeFilter: ['aria-hidden', 'aria-expanded'] });

    // The keyboard shortcut: "/" (not while typing in a field) and Ctrl+K (⌘K on a Mac) open the search
    // and put the focus in its field, the way the search button (desktop) or the overflow menu's entry
    // (phone) does: both show the same field (Luigi's `isSearchFieldVisible`).
    function typingIn(target) {
      if (!target || target.nodeType !== 1) return false;
      return !!target.isContentEditable || !!target.closest('input, textarea, select, [contenteditable]:not([contenteditable="false"])');
    }
    function onShortcutKey(event) {
      if (event.defaultPrevented || event.isComposing) return;
      var key = event.key;
      var typing = typingIn(event.target);
      // Ctrl+K in a Mac's text field deletes to the end of the line: there only ⌘K is ours.
      var command = SHORTCUT.mac ? event.metaKey || (event.ctrlKey && !typing) : event.ctrlKey || event.metaKey;
      var combo = command && !event.altKey && !event.shiftKey && (key === 'k' || key === 'K');
      // "/" is Shift+7 on a German keyboard: Shift is part of typing it, the other modifiers are not.
      var slash = key === '/' && !event.ctrlKey && !event.metaKey && !event.altKey && !typing;
      if (!combo && !slash) return;
      event.preventDefault();
      openField();
    }
    function openField() {
      var field = input || document.querySelector('input[data-testid="luigi-search-input"]');
      if (!field) return;
      var wrapper = field.closest('.luigi-search');
      if (wrapper && wrapper.getAttribute('aria-hidden') === 'true') {
        // Luigi shows the field at its next update; a hidden field cannot take the focus before.
        searchApi().openSearchField();
        requestAnimationFrame(function () { focusField(field); });
      } else {
        focusField(field);
      }
    }
    function focusField(field) {
      field.focus();
      if (field.value) field.select();
    }
    document.addEventListener('keydown', onShortcutKey);
    searchShortcut = onShortcutKey;

    return {
      searchFieldCentered: false,
      searchProvider: {
        // A function: Luigi would look a string up as a translation key first.
        inputPlaceholder: function () { return i18n.t(catalog ? 'shell.search.placeholderCatalog' : 'shell.search.placeholder'); },
        onInput: update,
        onEnter: function () {
          if (fieldValue() !== state.term) update();
          if (!state.term) return;
          if (results().length || state.catalog.state !== 'loading') {
            openFirst();
          } else {
            // Nothing yet but the catalog is on its way: ask now, open its first result when it comes.
            state.enter = true;
            if (timer) searchCatalog(state.term);
          }
        },
        onEscape: function () {
          if (fieldValue() || isOpen()) {
            clearTimeout(timer);
            if (request) request.abort();
            request = null;
            searchApi().clearSearchField();
            update();
            setExpanded(false);
          } else {
            // Escape in an empty field: put the field away, back to the button that opened it.
            searchApi().closeSearchField();
            var back = document.querySelector('[data-testid="luigi-search-btn-desktop"]');
            if (!back || !back.offsetParent) back = document.querySelector('button[data-testid="mobile-menu"]');
            if (back) back.focus();
          }
        },
        customSearchResultRenderer: renderPopover,
        onSearchResultItemSelected: select
      }
    };
  }

  // ==== End of global search ====================================================================

  // The page says which language portico chose (`<html lang>`, from the browser or the user's pick):
  // its texts load while the config does. A failure says so in the user's language, or in English
  // when the texts did not load either.
  var texts = window.porticoI18n
    ? window.porticoI18n.load(document.documentElement.lang || 'en')
    : Promise.reject(new Error('The portal could not start: its texts did not load. Reload the page.'));
  var configLoaded = fetch('/shell/config.json', { credentials: 'same-origin', headers: { 'Accept': 'application/json' } })
    .then(function (response) {
      if (response.status === 401) {
        signIn();
        return null;
      }
      if (!response.ok) {
        return texts.then(function (translator) {
          throw new Error(earlyText(translator, 'shell.configFailed', { status: response.status },
            'The portal configuration could not be loaded (HTTP {status}).'));
        });
      }
      return response.json();
    }, function () {
      // No answer at all (offline, the server down).
      return texts.then(function (translator) {
        throw new Error(earlyText(translator, 'shell.configUnreachable', null,
          'The portal could not be reached. Check your connection and reload the page.'));
      });
    });
  Promise.all([configLoaded, texts])
    .then(function (loaded) {
      i18n = loaded[1];
      if (loaded[0]) start(loaded[0]);
    })
    .catch(function (error) { showError(String(error.message || error)); });
})();
