// The shell's "My access" view (the hidden `/home/_my-access` entry, linked from the profile menu):
// why the user sees what they see and how to get more. It asks the server (`GET /shell/access.json`)
// and shows who the user is in this portal, each role they hold with the groups that grant it and what
// that role opens (apps and their pages, as links into the shell), the groups that grant no role here,
// and, with no role at all, why and whom to ask. It shows only what the server says the user holds.
//
// Its texts are the `access` block of /shell/i18n/<locale>.json (web/shell/i18n.js), in the language
// the shell hands over through Luigi Client; labels and descriptions in the answer come translated by
// the server.
(function () {
  'use strict';

  var ACCESS_URL = '/shell/access.json';
  /** The translator (web/shell/i18n.js) once the view knows its language; nothing is drawn before. */
  var i18n = null;

  function $(id) { return document.getElementById(id); }

  function element(tag, attributes, text) {
    var el = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      if (attributes[name] !== null && attributes[name] !== undefined) el.setAttribute(name, attributes[name]);
    });
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

  /** Names as `code`, joined the way the language joins a list: "a, b and c", "a, b und c". */
  function codeList(names) {
    var list = document.createDocumentFragment();
    i18n.listParts(names, 'conjunction').forEach(function (part) {
      list.appendChild(part.type === 'element' ? code(part.value) : document.createTextNode(part.value));
    });
    return list;
  }

  function plural(key, count) { return i18n.plural(key, count); }

  function strings(value) {
    return Array.isArray(value) ? value.filter(function (v) { return typeof v === 'string' && v; }) : [];
  }

  /** A shell path this view may link to (the server's, but never anything but the shell's own). */
  function shellPath(path) {
    return typeof path === 'string' && /^\/home(\/|$)/.test(path) ? path : null;
  }

  /** A real link (it opens in a new tab, it can be copied) that a plain click follows inside the shell. */
  function shellLink(label, path, attributes) {
    var link = element('a', attributes, label);
    link.setAttribute('href', path);
    link.setAttribute('target', '_top');
    link.addEventListener('click', function (event) {
      if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
      if (typeof LuigiClient === 'undefined' || window.parent === window) return; // not in the shell: a plain link
      event.preventDefault();
      LuigiClient.linkManager().navigate(path);
    });
    return link;
  }

  function testIdPart(value) {
    return String(value).replace(/[^A-Za-z0-9_.-]+/g, '-');
  }

  // ---------------------------------------------------------------------------------------------
  // Drawing

  function drawUser(user, tenant, groups) {
    $('user-name').textContent = user.name || user.email || i18n.t('access.you');
    $('user-email').textContent = user.name && user.email ? user.email : '';
    $('user-email').hidden = !(user.name && user.email);
    $('tenant').textContent = (tenant.title || tenant.id || '') + (tenant.title && tenant.id ? ' (' + tenant.id + ')' : '');
    $('groups').textContent = '';
    if (groups.length) $('groups').appendChild(codeList(groups));
    else $('groups').textContent = i18n.t('access.noGroups');
  }

  function drawOpens(role, opens, portal) {
    var apps = (Array.isArray(opens) ? opens : []).filter(function (app) { return app && shellPath(app.path); });
    if (!apps.length) {
      return element('p', { 'class': 'meta', 'data-testid': 'access-opens-' + testIdPart(role) },
        i18n.t('access.role.opensNothing', { portal: portal }));
    }
    var list = element('ul', { 'class': 'ax-apps', 'data-testid': 'access-opens-' + testIdPart(role) });
    apps.forEach(function (app) {
      var item = element('li', { 'class': 'ax-app', 'data-app-id': app.id || null });
      item.appendChild(shellLink(app.label || app.id || app.path, app.path, {
        'class': 'ax-app-link', 'data-testid': 'access-link-' + testIdPart(role) + '-' + testIdPart(app.id || app.path),
      }));
      var pages = (Array.isArray(app.pages) ? app.pages : []).filter(function (page) { return page && shellPath(page.path); });
      if (pages.length) {
        var sub = element('ul', { 'class': 'ax-pages', 'aria-label': i18n.t('access.role.pagesOf', { app: app.label || app.id || app.path }) });
        pages.forEach(function (page) {
          var pageItem = element('li');
          pageItem.appendChild(shellLink(page.label || page.path, page.path, { 'class': 'ax-page-link' }));
          sub.appendChild(pageItem);
        });
        item.appendChild(sub);
      }
      list.appendChild(item);
    });
    return list;
  }

  function drawRole(entry, index, portal) {
    var role = entry.role;
    var headingId = 'role-' + index;
    var section = element('section', {
      'class': 'ax-card ax-role', 'aria-labelledby': headingId, 'data-testid': 'access-role-' + testIdPart(role), 'data-role': role,
    });
    var heading = element('h2', { id: headingId, 'class': 'ax-role-title' });
    heading.appendChild(element('span', { 'class': 'ax-role-name' }, role));
    if (entry.description) {
      heading.appendChild(element('span', { 'class': 'ax-role-sep' }, ' \u2013 '));
      heading.appendChild(element('span', { 'class': 'ax-role-desc' }, entry.description));
    }
    section.appendChild(heading);

    var grantedBy = strings(entry.grantedBy);
    var granted = element('p', { 'class': 'ax-granted', 'data-testid': 'access-granted-' + testIdPart(role) });
    if (grantedBy.length) compose(granted, plural('access.role.grantedBy', grantedBy.length), { group: code(grantedBy[0]), groups: codeList(grantedBy) });
    else compose(granted, 'access.role.grantedDirectly', { portal: portal });
    section.appendChild(granted);

    section.appendChild(element('h3', { 'class': 'ax-opens-title' }, i18n.t('access.role.opensTitle')));
    section.appendChild(drawOpens(role, entry.opens, portal));
    return section;
  }

  function render(answer) {
    var user = answer.user || {};
    var tenant = answer.tenant || {};
    var portal = tenant.title || tenant.id || i18n.t('access.thisPortal');
    var groups = strings(user.groups);
    var roles = (Array.isArray(answer.roles) ? answer.roles : []).filter(function (r) { return r && typeof r.role === 'string'; });
    var unmapped = strings(answer.unmappedGroups);

    document.title = i18n.t('access.documentTitle');
    $('intro').textContent = i18n.t('access.introIn', { portal: portal });
    drawUser(user, tenant, groups);

    var list = $('roles');
    list.textContent = '';
    roles.forEach(function (entry, index) { list.appendChild(drawRole(entry, index, portal)); });

    var none = roles.length === 0;
    $('no-roles').hidden = !none;
    if (none) {
      var why = $('no-roles-why');
      if (groups.length) compose(why, plural('access.noRoles.group', groups.length), { group: code(groups[0]), groups: codeList(groups), portal: portal });
      else compose(why, 'access.noRoles.noGroup', { portal: portal });
      why.appendChild(document.createTextNode(' ' + i18n.t('access.noRoles.ask')));
    }

    // With no role, the notice above already says which groups grant nothing.
    var showUnmapped = unmapped.length > 0 && !none;
    $('unmapped').hidden = !showUnmapped;
    if (showUnmapped) {
      compose($('unmapped-text'), plural('access.unmapped.group', unmapped.length), { group: code(unmapped[0]), groups: codeList(unmapped), portal: portal });
    }

    $('loading').hidden = true;
    $('error').hidden = true;
    $('content').hidden = false;
  }

  /** Shows a failure: `problem` is `{ key, vars }` of its text. */
  function fail(problem) {
    $('loading').hidden = true;
    $('content').hidden = true;
    $('error-text').textContent = i18n.t(problem.key, problem.vars);
    $('error').hidden = false;
  }

  /** An error whose text is the key `key` (under `access.error`), filled from `vars` once drawn. */
  function problem(key, vars) {
    var error = new Error(key);
    error.problem = { key: 'access.error.' + key, vars: vars };
    return error;
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

  /** Loads the texts of `locale` (if they are not the ones shown) and shows the page in them. */
  function translate(locale) {
    if (i18n && i18n.locale === window.porticoI18n.supported(locale)) return Promise.resolve(false);
    return window.porticoI18n.load(locale).then(function (loaded) {
      i18n = loaded.apply(document);
      $('main').hidden = false;
      return true;
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Loading. The answer does not depend on the shell's context, so it is asked for at once; it is shown
  // once the shell on this origin has started this view (or at once outside the shell) and the view
  // has its texts.

  var ready = false;
  var outcome = null; // function that draws the last answer or failure, once ready
  var loading = false;

  function settle(draw) {
    outcome = draw;
    if (ready) draw();
  }

  function start() {
    translate(shellLocale()).then(function () {
      ready = true;
      if (outcome) outcome();
    });
  }

  function load() {
    if (loading) return;
    loading = true;
    $('retry').disabled = true;
    fetch(ACCESS_URL, { credentials: 'same-origin', headers: { 'Accept': 'application/json' } })
      .then(function (response) {
        if (response.status === 401) {
          // The session ended: the shell signs in again (see session-ended.js).
          if (window.parent !== window) window.parent.postMessage({ portico: 'session-ended' }, location.origin);
          throw problem('sessionEnded');
        }
        if (!response.ok) {
          throw problem('status', { status: response.status + (response.statusText ? ' ' + response.statusText : '') });
        }
        return response.json().catch(function () {
          throw problem('unreadable');
        });
      }, function () {
        throw problem('unreachable');
      })
      .then(function (answer) {
        if (!answer || typeof answer !== 'object' || Array.isArray(answer)) throw problem('unreadable');
        settle(function () { render(answer); });
      })
      .catch(function (error) {
        var what = error && error.problem ? error.problem : { key: 'access.error.other' };
        settle(function () { fail(what); });
      })
      .then(function () {
        loading = false;
        $('retry').disabled = false;
      });
  }

  $('retry').addEventListener('click', function () {
    $('error').hidden = true;
    $('loading').hidden = false;
    load();
  });

  load();
  if (window.parent === window) start();
  LuigiClient.addInitListener(function (context, origin) {
    // Only the shell on this origin may start this view (Luigi's micro-frontend security guidance).
    if (origin !== location.origin) return;
    start();
  });
  // Shown again (Luigi keeps this frame for its view group): asked again, so a changed role map shows;
  // and in the shell's language, should it have changed (Luigi Client tells of that the same way).
  LuigiClient.addContextUpdateListener(function () {
    if (!ready) return;
    translate(shellLocale()).then(function (changed) {
      if (changed && outcome) outcome();
    });
    load();
  });
})();
