// The shell's "My access" view (the hidden `/home/_my-access` entry, linked from the profile menu):
// why the user sees what they see and how to get more. It asks the server (`GET /shell/access.json`)
// and shows who the user is in this portal, each role they hold with the groups that grant it and what
// that role opens (apps and their pages, as links into the shell), the groups that grant no role here,
// and, with no role at all, why and whom to ask. It shows only what the server says the user holds.
(function () {
  'use strict';

  var ACCESS_URL = '/shell/access.json';

  function $(id) { return document.getElementById(id); }

  function element(tag, attributes, text) {
    var el = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      if (attributes[name] !== null && attributes[name] !== undefined) el.setAttribute(name, attributes[name]);
    });
    if (text !== undefined) el.textContent = text;
    return el;
  }

  /** Fills `parent` with text and `code` parts: strings are text, [text] is code. */
  function fill(parent, parts) {
    parent.textContent = '';
    parts.forEach(function (part) {
      parent.appendChild(Array.isArray(part) ? element('code', {}, part[0]) : document.createTextNode(part));
    });
    return parent;
  }

  /** "a", "a and b", "a, b and c", each name as code. */
  function listParts(names) {
    var parts = [];
    names.forEach(function (name, index) {
      if (index > 0) parts.push(index === names.length - 1 ? ' and ' : ', ');
      parts.push([name]);
    });
    return parts;
  }

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
    $('user-name').textContent = user.name || user.email || 'You';
    $('user-email').textContent = user.name && user.email ? user.email : '';
    $('user-email').hidden = !(user.name && user.email);
    $('tenant').textContent = (tenant.title || tenant.id || '') + (tenant.title && tenant.id ? ' (' + tenant.id + ')' : '');
    if (groups.length) fill($('groups'), listParts(groups));
    else $('groups').textContent = 'none';
  }

  function drawOpens(role, opens, tenantTitle) {
    var apps = (Array.isArray(opens) ? opens : []).filter(function (app) { return app && shellPath(app.path); });
    if (!apps.length) {
      return element('p', { 'class': 'meta', 'data-testid': 'access-opens-' + testIdPart(role) },
        'This role opens nothing in ' + tenantTitle + ' on its own.');
    }
    var list = element('ul', { 'class': 'ax-apps', 'data-testid': 'access-opens-' + testIdPart(role) });
    apps.forEach(function (app) {
      var item = element('li', { 'class': 'ax-app', 'data-app-id': app.id || null });
      item.appendChild(shellLink(app.label || app.id || app.path, app.path, {
        'class': 'ax-app-link', 'data-testid': 'access-link-' + testIdPart(role) + '-' + testIdPart(app.id || app.path),
      }));
      var pages = (Array.isArray(app.pages) ? app.pages : []).filter(function (page) { return page && shellPath(page.path); });
      if (pages.length) {
        var sub = element('ul', { 'class': 'ax-pages', 'aria-label': 'Pages of ' + (app.label || app.id) });
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

  function drawRole(entry, index, tenantTitle) {
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
    section.appendChild(fill(element('p', { 'class': 'ax-granted', 'data-testid': 'access-granted-' + testIdPart(role) }), grantedBy.length
      ? ['Granted by your ' + (grantedBy.length === 1 ? 'group ' : 'groups ')].concat(listParts(grantedBy), ['.'])
      : ['Granted to you in ' + tenantTitle + '.']));

    section.appendChild(element('h3', { 'class': 'ax-opens-title' }, 'What it opens'));
    section.appendChild(drawOpens(role, entry.opens, tenantTitle));
    return section;
  }

  function render(answer) {
    var user = answer.user || {};
    var tenant = answer.tenant || {};
    var tenantTitle = tenant.title || tenant.id || 'this portal';
    var groups = strings(user.groups);
    var roles = (Array.isArray(answer.roles) ? answer.roles : []).filter(function (r) { return r && typeof r.role === 'string'; });
    var unmapped = strings(answer.unmappedGroups);

    document.title = 'My access';
    $('intro').textContent = 'Why you see what you see in ' + tenantTitle + ', and how to get more.';
    drawUser(user, tenant, groups);

    var list = $('roles');
    list.textContent = '';
    roles.forEach(function (entry, index) { list.appendChild(drawRole(entry, index, tenantTitle)); });

    var none = roles.length === 0;
    $('no-roles').hidden = !none;
    if (none) {
      fill($('no-roles-why'), (groups.length
        ? ['Your ' + (groups.length === 1 ? 'group' : 'groups') + ' ('].concat(listParts(groups), [') give' + (groups.length === 1 ? 's' : '') + ' you no role in ' + tenantTitle + '.'])
        : ['You are in no group, so you have no role in ' + tenantTitle + '.'])
        .concat([' Ask your team lead or the platform team to add you to a group.']));
    }

    // With no role, the notice above already says which groups grant nothing.
    var showUnmapped = unmapped.length > 0 && !none;
    $('unmapped').hidden = !showUnmapped;
    if (showUnmapped) {
      fill($('unmapped-text'), [(unmapped.length === 1 ? 'Your group ' : 'Your groups ')].concat(listParts(unmapped), [
        (unmapped.length === 1 ? ' grants' : ' grant') + ' no role in ' + tenantTitle +
        '. ' + (unmapped.length === 1 ? 'It may' : 'They may') + ' give access in other portals or tools.']));
    }

    $('loading').hidden = true;
    $('error').hidden = true;
    $('content').hidden = false;
  }

  function fail(message) {
    $('loading').hidden = true;
    $('content').hidden = true;
    $('error-text').textContent = message;
    $('error').hidden = false;
  }

  // ---------------------------------------------------------------------------------------------
  // Loading. The answer does not depend on the shell's context, so it is asked for at once; it is shown
  // once the shell on this origin has started this view (or at once outside the shell).

  var started = window.parent === window;
  var outcome = null; // function that draws the last answer or failure, once started
  var loading = false;

  function settle(draw) {
    outcome = draw;
    if (started) draw();
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
          throw new Error('Your session has ended. Sign in again to see your access.');
        }
        if (!response.ok) {
          throw new Error('Your access could not be loaded: the portal answered ' + response.status +
            (response.statusText ? ' ' + response.statusText : '') + '. Try again in a moment.');
        }
        return response.json().catch(function () {
          throw new Error(UNREADABLE);
        });
      }, function () {
        throw new Error('Your access could not be loaded: the portal could not be reached. Check your connection and try again.');
      })
      .then(function (answer) {
        if (!answer || typeof answer !== 'object' || Array.isArray(answer)) throw new Error(UNREADABLE);
        settle(function () { render(answer); });
      })
      .catch(function (error) {
        var message = error && error.message ? error.message : 'Your access could not be loaded. Try again in a moment.';
        settle(function () { fail(message); });
      })
      .then(function () {
        loading = false;
        $('retry').disabled = false;
      });
  }

  var UNREADABLE = 'Your access could not be loaded: the portal sent an answer this page cannot read. Try again in a moment.';

  $('retry').addEventListener('click', function () {
    $('error').hidden = true;
    $('loading').hidden = false;
    load();
  });

  load();
  LuigiClient.addInitListener(function (context, origin) {
    // Only the shell on this origin may start this view (Luigi's micro-frontend security guidance).
    if (origin !== location.origin) return;
    started = true;
    if (outcome) outcome();
  });
  // Shown again (Luigi keeps this frame for its view group): asked again, so a changed role map shows.
  LuigiClient.addContextUpdateListener(function () {
    if (started) load();
  });
})();
