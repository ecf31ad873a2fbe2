// The shell's "page not found" view (the hidden `/home/_not-found` entry). The shell's
// pageNotFoundHandler (bootstrap.js) shows it for a path Luigi cannot map and keeps that path in the
// address bar; this view asks the server what the path is (`GET /shell/route.json?path=…`) and says
// why the user cannot open it: nothing there, an app or page their roles do not reach (and who can
// change that), or an app without that page.
(function () {
  'use strict';

  var NOT_FOUND_PATH = '/home/_not-found';
  var NOT_FOUND_KEY = 'portico.notFoundPath';

  function $(id) { return document.getElementById(id); }

  function element(tag, attributes, text) {
    var el = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) { el.setAttribute(name, attributes[name]); });
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

  function roleParts(need) {
    var parts = [[need.role]];
    if (need.description) parts.push(' (' + need.description + ')');
    var groups = need.groups || [];
    if (groups.length) {
      parts.push(', which members of ');
      groups.forEach(function (group, index) {
        if (index > 0) parts.push(index === groups.length - 1 ? ' or ' : ', ');
        parts.push([group]);
      });
      parts.push(' have');
    } else {
      parts.push(', which no group grants in this portal');
    }
    return parts;
  }

  function render(path, answer) {
    var title = $('title');
    var reason = $('reason');
    var needs = $('needs');
    var actions = $('actions');
    needs.hidden = true;
    needs.textContent = '';
    Array.prototype.slice.call(actions.querySelectorAll('[data-extra]')).forEach(function (el) { el.remove(); });
    var shown = path || 'this address';
    var app = answer && answer.app;

    if (answer && answer.kind === 'forbidden' && app) {
      document.title = title.textContent = 'You cannot open ' + app.label;
      var what = app.label + (answer.page ? ' (page ' + answer.page + ')' : '');
      reason.textContent = what + ' exists, but you cannot open it.';
      var list = answer.needs || [];
      if (list.length === 1) {
        needs.appendChild(fill(element('p'), ['It needs the role '].concat(roleParts(list[0]), ['.'])));
      } else if (list.length > 1) {
        needs.appendChild(element('p', {}, 'It needs one of these roles:'));
        var ul = element('ul');
        list.forEach(function (need) { ul.appendChild(fill(element('li'), roleParts(need))); });
        needs.appendChild(ul);
      }
      var roles = answer.roles || [];
      needs.appendChild(roles.length
        ? fill(element('p', { 'data-testid': 'not-found-roles' }), ['Your roles: '].concat(
          roles.reduce(function (parts, role, index) { return parts.concat(index ? [', ', [role]] : [[role]]); }, []), ['.']))
        : element('p', { 'data-testid': 'not-found-roles' }, 'You have no roles in this portal.'));
      var groups = [];
      list.forEach(function (need) { (need.groups || []).forEach(function (g) { if (groups.indexOf(g) < 0) groups.push(g); }); });
      var who = app.owner ? 'Ask ' + app.owner + ' or your team lead' : 'Ask your team lead or the platform team';
      needs.appendChild(element('p', {}, groups.length
        ? who + ' to add you to ' + (groups.length === 1 ? 'this group' : 'one of these groups') + '.'
        : who + ' how to get access.'));
      needs.hidden = false;
    } else if (answer && answer.kind === 'no-page' && app) {
      document.title = title.textContent = 'No such page in ' + app.label;
      fill(reason, [app.label + ' has no page at ', [shown], ', but you can open the app itself.'
        + (app.owner ? ' It is owned by ' + app.owner + '.' : '')]);
      var appLink = shellLink(element('a', { 'data-extra': '', 'data-testid': 'not-found-app-link' }, 'Open ' + app.label),
        '/home/' + encodeURIComponent(app.id));
      actions.insertBefore(appLink, actions.firstChild);
    } else if (answer && answer.kind === 'unknown') {
      document.title = title.textContent = 'Page not found';
      fill(reason, ['There is no page at ', [shown], ' in this portal.']);
    } else {
      // The server could not say (an older portico, or an error): what the shell knows.
      document.title = title.textContent = 'Page not found';
      fill(reason, ['There is no page at ', [shown], ' that you can open.']);
    }
  }

  var asked = null;

  function update() {
    var path = requestedPath();
    if (path === asked) return;
    asked = path;
    if (!path) {
      render(null, null);
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
        if (asked === path) render(path, answer);
      });
  }

  shellLink($('home-link'), '/home');
  update();
  // Luigi reuses this view's frame from one unknown path to the next and only updates its context.
  LuigiClient.addContextUpdateListener(function () { update(); });
  LuigiClient.addInitListener(function () { update(); });
})();
