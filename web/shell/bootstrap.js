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
// - `routing.pageNotFoundHandler`: an unknown or forbidden path shows the hidden `/home/_not-found`
//   view (web/shell/not-found.js) and keeps the address the user asked for.
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

  function signIn() {
    var here = location.pathname + location.search + location.hash;
    location.assign('/auth/login?return_to=' + encodeURIComponent(here));
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
    if (isHome(node)) return ['Home'];
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

    config.settings.iframeCreationInterceptor = function (iframe, viewGroup, navigationNode, microFrontendType) {
      iframe.title = frameTitle(navigationNode);
      if (microFrontendType === 'main') watchdog.watch(iframe, navigationNode);
    };

    config.navigation.nodeChangeHook = function (previous, next) {
      showAskedAddress(next);
      var title = labelsOf(next).concat(tenant.title ? [tenant.title] : []).join(' · ');
      if (title) setDocumentTitle(title);
      // A frame that Luigi reuses for another page of the same app keeps its element: rename it.
      var active = activeFrame();
      if (active) active.title = frameTitle(next);
      watchdog.navigated();
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

    repairLuigiMarkup();
    Luigi.setConfig(config);
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
      document.querySelectorAll('button[aria-controls="overflowPopover"]:not([aria-label])').forEach(function (button) {
        button.setAttribute('aria-label', 'More');
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

  /** `<page> – <app>`, as a screen reader announces the frame. */
  function frameTitle(node) {
    var labels = labelsOf(node);
    return labels.length ? labels.join(' – ') : 'App';
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
    var nav = element('nav', { 'aria-label': 'Breadcrumb', 'class': 'portico-breadcrumbs', 'data-testid': 'portico-breadcrumbs' });
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
      var name = app ? app.label : (node.label || 'This page');
      var container = watched.iframe.parentNode;
      if (!container) return;

      var panel = element('div', { 'class': 'portico-frame-panel', 'role': 'alert', 'data-testid': 'portico-frame-panel' });
      var box = element('div', { 'class': 'portico-frame-panel-box' });
      box.appendChild(element('h2', {}, name + ' did not start'));
      watched.reason = element('p', { 'data-testid': 'portico-frame-reason' });
      describe(watched);
      box.appendChild(watched.reason);
      if (app && app.owner) {
        box.appendChild(element('p', { 'data-testid': 'portico-frame-owner' }, 'Owner: ' + app.owner + '. If this keeps happening, tell them.'));
      }
      box.appendChild(element('p', { 'class': 'portico-frame-panel-meta' },
        'Waited ' + Math.round(timeoutMs / 100) / 10 + ' s for ' + (nodePath(node) || location.pathname) + '.'));
      var retry = element('button', { type: 'button', 'data-testid': 'portico-frame-retry' }, 'Try again');
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
        reason.appendChild(document.createTextNode('The page loaded but did not start Luigi Client: the app may not include Luigi Client (its owner can add it, or set '));
        reason.appendChild(element('code', {}, 'luigi_client: false'));
        reason.appendChild(document.createTextNode(' for the app).'));
      } else {
        reason.textContent = 'The app is not answering: it may be down or slow.';
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

  fetch('/shell/config.json', { credentials: 'same-origin', headers: { 'Accept': 'application/json' } })
    .then(function (response) {
      if (response.status === 401) {
        signIn();
        return null;
      }
      if (!response.ok) throw new Error('the portal configuration could not be loaded (HTTP ' + response.status + ')');
      return response.json();
    })
    .then(function (shell) {
      if (shell) start(shell);
    })
    .catch(function (error) { showError(String(error.message || error)); });
})();
