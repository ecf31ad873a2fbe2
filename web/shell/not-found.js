// The shell's "page not found" view (the hidden `/home/_not-found` entry). The shell's
// pageNotFoundHandler (bootstrap.js) shows it for a path Luigi cannot map and keeps that path in the
// address bar; this view asks the server what the path is (`GET /shell/route.json?path=…`) and says
// why the user cannot open it: nothing there, an app or page their roles do not reach (and who can
// change that: the app's owner, and the tenant's "Request access" links, one per group that would let
// them in), or an app without that page. The server tells no more than this one path needs.
//
// Its texts are the `notFound` block of /shell/i18n/<locale>.json (web/shell/i18n.js), in the language
// the shell hands over through Luigi Client; app and page labels come translated by the server.
(function () {
  'use strict';

  var NOT_FOUND_PATH = '/home/_not-found';
  var NOT_FOUND_KEY = 'portico.notFoundPath';
  /** The translator (web/shell/i18n.js) once the view knows its language; nothing is drawn before. */
  var i18n = null;

  function $(id) { return document.getElementById(id); }

  function element(tag, attributes, text) {
    var el = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) { el.setAttribute(name, attributes[name]); });
    if (text !== undefined) el.textContent = text;
    return el;
  }

  /**
   * Fills `parent` with the text of `key`, each `{placeholder}` replaced by its value in `vars`: a
   * string as text, a node (a `code` name, a list of them) as itself.
   */
  function compose(parent, key, vars) {
    parent.textContent = '';
    i18n.t(key).split(/(\{[A-Za-z0-9_]+\})/).forEach(function (piece) {
      var name = /^\{([A-Za-z0-9_]+)\}$/.exec(piece);
      var value = name && vars && Object.prototype.hasOwnProperty.call(vars, name[1]) ? vars[name[1]] : undefined;
      if (value === undefined) {
        if (piece) parent.appendChild(document.createTextNode(piece));
      } else {
        parent.appendChild(value instanceof Node ? value : document.createTextNode(String(value)));
      }
    });
    return parent;
  }

  function code(name) { return element('code', {}, name); }

  /**
   * Names as `code`, joined the way the language joins a list: `type` 'conjunction' ("a, b and c") or
   * 'disjunction' ("a, b or c").
   */
  function codeList(names, type) {
    var list = document.createDocumentFragment();
    i18n.listParts(names, type).forEach(function (part) {
      list.appendChild(part.type === 'element' ? code(part.value) : document.createTextNode(part.value));
    });
    return list;
  }

  function plural(key, count) { return i18n.plural(key, count); }

  /** The shell path the user asked for: the shell's address (kept by the not-found handler), or the
   * one the handler stashed when a navigation from an app could not keep it. */
  function requestedPath() {
    var shown = null;
    try {
      if (window.parent !== window) shown = window.parent.location.pathname;
    } catch (e) { /* not framed by the shell */ }
    if (shown && shown.replace(/\/+$/, '') !== NOT_FOUND_PATH) return shown;
    try {
      var stashed = sessionStorage.getItem(NOT_FOUND_KEY);
      if (stashed) return stashed.split('?')[0].split('#')[0];
    } catch (e) { /* storage off */ }
    return null;
  }

  /** A real link (it opens in a new tab, it can be copied) that a plain click follows inside the shell. */
  function shellLink(link, path) {
    link.setAttribute('href', path);
    link.setAttribute('target', '_top');
    link.addEventListener('click', function (event) {
      if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      LuigiClient.linkManager().navigate(path);
    });
    return link;
  }

  /**
   * A role that opens the app, and who has it: `needs.sentence*` for the only one ("It needs the role
   * …, which members of … have."), `needs.item*` for one of a list.
   */
  function needParts(parent, need, form) {
    var groups = (need.groups || []).filter(function (g) { return typeof g === 'string' && g; });
    var role = need.description
      ? compose(document.createDocumentFragment(), 'notFound.needs.roleDescribed', { role: code(need.role), description: need.description })
      : code(need.role);
    var key = 'notFound.needs.' + form + (groups.length ? plural('Group', groups.length) : 'NoGroup');
    return compose(parent, key, { role: role, group: groups.length ? code(groups[0]) : '', groups: codeList(groups, 'disjunction') });
  }

  /**
   * A "Request access" link from the server's answer, or null when its URL is not one the server would
   * send (it only fills templates of https:, loopback http: and mailto: links; never a script URL).
   */
  function requestLink(link) {
    var url;
    try { url = new URL(link.url); } catch (e) { return null; }
    if (['https:', 'http:', 'mailto:'].indexOf(url.protocol) < 0) return null;
    var text = typeof link.group === 'string' && link.group
      ? i18n.t('notFound.requestAccess.group', { group: link.group })
      : typeof link.role === 'string' && link.role
        ? i18n.t('notFound.requestAccess.role', { role: link.role })
        : i18n.t('notFound.requestAccess.any');
    // A new tab: the ticket system does not belong in the shell's frame (and may refuse it). No
    // Referer, so the portal's address stays here.
    return element('a', { 'data-extra': '', 'data-testid': 'not-found-request-access', href: url.href, target: '_blank', rel: 'noopener noreferrer' }, text);
  }

  function render(path, answer) {
    var title = $('title');
    var reason = $('reason');
    var needs = $('needs');
    var actions = $('actions');
    needs.hidden = true;
    needs.textContent = '';
    Array.prototype.slice.call(actions.querySelectorAll('[data-extra]')).forEach(function (el) { el.remove(); });
    // The address as code; without one, "this address" as words.
    var shown = path ? code(path) : i18n.t('notFound.thisAddress');
    var app = answer && answer.app;

    if (answer && answer.kind === 'forbidden' && app) {
      document.title = title.textContent = i18n.t('notFound.forbidden.title', { app: app.label });
      reason.textContent = answer.page
        ? i18n.t('notFound.forbidden.reasonPage', { app: app.label, page: answer.page })
        : i18n.t('notFound.forbidden.reason', { app: app.label });
      var list = answer.needs || [];
      if (list.length === 1) {
        needs.appendChild(needParts(element('p'), list[0], 'sentence'));
      } else if (list.length > 1) {
        needs.appendChild(element('p', {}, i18n.t('notFound.needs.oneOf')));
        var ul = element('ul');
        list.forEach(function (need) { ul.appendChild(needParts(element('li'), need, 'item')); });
        needs.appendChild(ul);
      }
      var roles = (answer.roles || []).filter(function (r) { return typeof r === 'string' && r; });
      needs.appendChild(roles.length
        ? compose(element('p', { 'data-testid': 'not-found-roles' }), 'notFound.forbidden.yourRoles', { roles: codeList(roles, 'conjunction') })
        : element('p', { 'data-testid': 'not-found-roles' }, i18n.t('notFound.forbidden.noRoles')));
      var groups = [];
      list.forEach(function (need) { (need.groups || []).forEach(function (g) { if (groups.indexOf(g) < 0) groups.push(g); }); });
      var ask = 'notFound.ask.' + (app.owner ? 'owner' : 'team') + (groups.length ? plural('Group', groups.length) : 'NoGroup');
      needs.appendChild(element('p', { 'data-testid': 'not-found-ask' }, i18n.t(ask, { owner: app.owner || '' })));
      needs.hidden = false;
      // The tenant's "Request access" links go first among the actions: they are what to do next.
      var home = $('home-link');
      (Array.isArray(answer.request_access) ? answer.request_access : []).forEach(function (link) {
        var a = link && typeof link.url === 'string' ? requestLink(link) : null;
        if (a) actions.insertBefore(a, home);
      });
    } else if (answer && answer.kind === 'no-page' && app) {
      document.title = title.textContent = i18n.t('notFound.noPage.title', { app: app.label });
      compose(reason, 'notFound.noPage.reason', { app: app.label, path: shown });
      if (app.owner) reason.appendChild(document.createTextNode(' ' + i18n.t('notFound.noPage.owner', { owner: app.owner })));
      var appLink = shellLink(element('a', { 'data-extra': '', 'data-testid': 'not-found-app-link' }, i18n.t('notFound.noPage.openApp', { app: app.label })),
        '/home/' + encodeURIComponent(app.id));
      actions.insertBefore(appLink, actions.firstChild);
    } else if (answer && answer.kind === 'unknown') {
      document.title = title.textContent = i18n.t('notFound.documentTitle');
      compose(reason, 'notFound.unknown', { path: shown });
    } else {
      // The server could not say (an older portico, or an error): what the shell knows.
      document.title = title.textContent = i18n.t('notFound.documentTitle');
      compose(reason, 'notFound.cannotOpen', { path: shown });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Language. The shell's: Luigi Client's current locale, once the shell has started this view; outside
  // the shell, the browser's.

  function shellLocale() {
    var locale = '';
    if (window.parent !== window && typeof LuigiClient !== 'undefined') {
      try { locale = LuigiClient.uxManager().getCurrentLocale(); } catch (e) { /* not started */ }
    }
    // Outside the shell: the browser's language (the pick's cookie is HttpOnly, for the server only).
    return locale || navigator.language || 'en';
  }

  var shownLast = null; // the last answer drawn, [path, answer], to draw again in another language

  /** Loads the texts of `locale` (if they are not the ones shown), shows the page in them. */
  function translate(locale) {
    if (i18n && i18n.locale === window.porticoI18n.supported(locale)) return Promise.resolve();
    return window.porticoI18n.load(locale).then(function (loaded) {
      i18n = loaded.apply(document);
      if (shownLast) render(shownLast[0], shownLast[1]);
      $('main').hidden = false;
    });
  }

  function show(path, answer) {
    shownLast = [path, answer];
    if (i18n) render(path, answer);
  }

  var asked;

  function update() {
    var path = requestedPath();
    if (path === asked) return;
    asked = path;
    if (!path) {
      show(null, null);
      return;
    }
    fetch('/shell/route.json?path=' + encodeURIComponent(path), {
      credentials: 'same-origin',
      headers: { 'Accept': 'application/json' }
    })
      .then(function (response) {
        if (response.status === 401 && window.parent !== window) {
          // The session ended: the shell signs in again (see session-ended.js).
          window.parent.postMessage({ portico: 'session-ended' }, location.origin);
        }
        return response.ok ? response.json() : null;
      })
      .catch(function () { return null; })
      .then(function (answer) {
        if (asked === path) show(path, answer);
      });
  }

  shellLink($('home-link'), '/home');
  update();
  if (window.parent === window) translate(shellLocale());
  // Luigi reuses this view's frame from one unknown path to the next and only updates its context;
  // the shell's language, should it change, comes the same way.
  LuigiClient.addContextUpdateListener(function () {
    update();
    if (i18n) translate(shellLocale());
  });
  LuigiClient.addInitListener(function () {
    translate(shellLocale());
    update();
  });
})();
