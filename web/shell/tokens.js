// The "Access tokens" page (/shell/tokens, rendered by src/shell/tokens.rs; reached from the shell's
// profile menu): the user's personal access tokens over the JSON API at /auth/tokens.
//
// - GET /auth/tokens lists the live tokens (never a secret), the apps a token may be narrowed to (those
//   the user may open), whether the tenant has a Backstage API, and the longest lifetime allowed.
// - POST /auth/tokens mints one; its answer holds the token, the only time the secret is ever sent.
//   It is shown once, in the "new token" box, and dropped from the page when the user is done with it
//   or leaves the page (pagehide): nothing keeps it, not even a reload.
// - DELETE /auth/tokens/<id> revokes one, after the user confirms it in place.
//
// Changes send the session's CSRF token (the page's <meta name="portico-csrf-token">) as
// X-Portico-CSRF, from this origin. Texts are the `tokens` block of /shell/i18n/<locale>.json
// (web/shell/i18n.js), in the page's language (<html lang>); the API's own `message` explains a
// refusal. Times from the API are unix seconds.
(function () {
  'use strict';

  var API = '/auth/tokens';
  var csrfMeta = document.querySelector('meta[name="portico-csrf-token"]');
  var CSRF = csrfMeta ? csrfMeta.getAttribute('content') : '';

  /** The translator (web/shell/i18n.js); nothing dynamic is drawn before it is there. */
  var i18n = null;
  /** The last answer of GET /auth/tokens. */
  var state = null;

  function $(id) { return document.getElementById(id); }

  function t(key, vars) { return i18n.t('tokens.' + key, vars); }

  function element(tag, attributes, text) {
    var el = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      var value = attributes[name];
      if (value !== null && value !== undefined && value !== false) el.setAttribute(name, value === true ? '' : value);
    });
    if (text !== undefined) el.textContent = text;
    return el;
  }

  /** Calls the API; resolves to `{ status, body }` (`body` null when there is none or it is no JSON). */
  function api(method, path, payload) {
    var headers = { Accept: 'application/json' };
    if (method !== 'GET') headers['X-Portico-CSRF'] = CSRF;
    if (payload !== undefined) headers['Content-Type'] = 'application/json';
    return fetch(path, {
      method: method,
      credentials: 'same-origin',
      cache: 'no-store',
      headers: headers,
      body: payload === undefined ? undefined : JSON.stringify(payload),
    }).then(function (response) {
      return response.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
        return { status: response.status, body: body };
      });
    });
  }

  /** What went wrong, in words: the API's own message, else what the page can tell. */
  function problem(answer) {
    if (!answer) return t('error.unreachable');
    if (answer.body && typeof answer.body.message === 'string' && answer.body.message) return answer.body.message;
    return t('error.status', { status: answer.status });
  }

  /** The session is gone: say so, with a way back to this page through sign-in. */
  function sessionEnded(into) {
    into.textContent = '';
    into.appendChild(element('span', {}, t('error.sessionEnded') + ' '));
    into.appendChild(element('a', { href: '/auth/login?return_to=' + encodeURIComponent(location.pathname) }, t('error.signIn')));
    into.hidden = false;
  }

  function announce(text) {
    var region = $('announce');
    region.textContent = '';
    // A fresh text in a live region is read out; the same text twice needs the blank in between.
    setTimeout(function () { region.textContent = text; }, 50);
  }

  // ---- times ---------------------------------------------------------------------------------------

  function date(seconds) {
    var at = new Date(seconds * 1000);
    try { return at.toLocaleDateString(i18n.locale, { dateStyle: 'medium' }); } catch (e) { return at.toISOString().slice(0, 10); }
  }

  function dateTime(seconds) {
    var at = new Date(seconds * 1000);
    try { return at.toLocaleString(i18n.locale, { dateStyle: 'medium', timeStyle: 'short' }); } catch (e) { return at.toISOString(); }
  }

  /** `seconds` from now as this language says it ("in 90 days", "vor 5 Minuten"); '' without Intl. */
  function relative(seconds) {
    var delta = seconds - Date.now() / 1000;
    var size = Math.abs(delta);
    var unit = size < 3600 ? ['minute', 60] : size < 86400 ? ['hour', 3600] : ['day', 86400];
    try {
      return new Intl.RelativeTimeFormat(i18n.locale, { numeric: 'auto' }).format(Math.round(delta / unit[1]), unit[0]);
    } catch (e) {
      return '';
    }
  }

  /** A `<time>` with the date (and, if asked, how far off it is); the full time as its tooltip. */
  function timeElement(seconds, withRelative) {
    var el = element('time', { datetime: new Date(seconds * 1000).toISOString(), title: dateTime(seconds) }, date(seconds));
    var far = withRelative ? relative(seconds) : '';
    if (far) el.appendChild(element('span', { class: 'meta' }, ' (' + far + ')'));
    return el;
  }

  function lastUsed(seconds) {
    if (seconds === null || seconds === undefined) return element('span', {}, t('list.never'));
    var ago = Date.now() / 1000 - seconds;
    var text = ago < 60 ? t('list.justNow') : ago < 86400 ? relative(seconds) || dateTime(seconds) : dateTime(seconds);
    return element('time', { datetime: new Date(seconds * 1000).toISOString(), title: dateTime(seconds) }, text);
  }

  // ---- what a token reaches ------------------------------------------------------------------------

  function appLabel(id) {
    var apps = (state && state.apps) || [];
    for (var i = 0; i < apps.length; i++) if (apps[i].id === id) return apps[i].label;
    return id; // an app the user may no longer open, or that is gone: its id is all there is
  }

  function listText(names) {
    return i18n.listParts(names, 'conjunction').map(function (part) { return part.value; }).join('');
  }

  /** The narrowing in words: "all your apps" or the app labels (and the Backstage API). */
  function reachText(scope) {
    scope = scope || {};
    if (!Array.isArray(scope.apps)) return t(state && state.backstage ? 'list.allAppsAndBackstage' : 'list.allApps');
    var names = scope.apps.map(appLabel);
    if (scope.backstage) names.push(t('list.backstageApi'));
    return listText(names);
  }

  // ---- the list ------------------------------------------------------------------------------------

  function fact(list, label, value, testId) {
    list.appendChild(element('dt', {}, label));
    var dd = element('dd', { 'data-testid': testId });
    if (typeof value === 'string') dd.textContent = value; else dd.appendChild(value);
    list.appendChild(dd);
  }

  function tokenItem(token) {
    var item = element('li', { class: 'token', 'data-testid': 'token-' + token.id, 'data-token-id': token.id });
    var head = element('div', { class: 'token-head' });
    head.appendChild(element('h3', { class: 'token-name', id: 'token-name-' + token.id }, token.name));
    if (token.scope && token.scope.read_only) head.appendChild(element('span', { class: 'badge', 'data-testid': 'token-read-only-badge-' + token.id }, t('list.readOnly')));
    item.appendChild(head);

    var facts = element('dl', { class: 'facts' });
    fact(facts, t('list.reaches'), reachText(token.scope), 'token-reach-' + token.id);
    fact(facts, t('list.created'), timeElement(token.created_at, false), 'token-created-' + token.id);
    fact(facts, t('list.expires'), timeElement(token.expires_at, true), 'token-expires-' + token.id);
    fact(facts, t('list.lastUsed'), lastUsed(token.last_used_at), 'token-last-used-' + token.id);
    item.appendChild(facts);

    var actions = element('div', { class: 'token-actions' });
    var revoke = element('button', { type: 'button', class: 'button button-danger-quiet', 'data-testid': 'token-revoke-' + token.id });
    revoke.appendChild(document.createTextNode(t('list.revoke')));
    revoke.appendChild(element('span', { class: 'visually-hidden' }, ' ' + token.name));
    revoke.addEventListener('click', function () { askToRevoke(item, token, actions, revoke); });
    actions.appendChild(revoke);
    item.appendChild(actions);
    return item;
  }

  /** The confirm step, in place of the Revoke button: the question, then revoke or cancel. */
  function askToRevoke(item, token, actions, revoke) {
    revoke.hidden = true;
    var questionId = 'token-confirm-text-' + token.id;
    var confirm = element('div', { class: 'confirm', role: 'group', 'aria-labelledby': questionId, 'data-testid': 'token-confirm-' + token.id });
    confirm.appendChild(element('p', { id: questionId, class: 'confirm-text' }, t('list.confirm', { name: token.name })));
    var error = element('p', { class: 'notice notice-error', role: 'alert', 'data-testid': 'token-revoke-error-' + token.id, hidden: true });
    var buttons = element('div', { class: 'confirm-buttons' });
    var yes = element('button', { type: 'button', class: 'button button-danger', 'data-testid': 'token-revoke-confirm-' + token.id }, t('list.confirmYes'));
    var no = element('button', { type: 'button', class: 'button button-quiet', 'data-testid': 'token-revoke-cancel-' + token.id }, t('list.cancel'));
    buttons.appendChild(yes);
    buttons.appendChild(no);
    confirm.appendChild(buttons);
    confirm.appendChild(error);
    actions.appendChild(confirm);

    function close() {
      confirm.remove();
      revoke.hidden = false;
      revoke.focus();
    }
    no.addEventListener('click', close);
    confirm.addEventListener('keydown', function (event) { if (event.key === 'Escape') close(); });
    yes.addEventListener('click', function () {
      yes.disabled = true;
      no.disabled = true;
      yes.textContent = t('list.revoking');
      api('DELETE', API + '/' + encodeURIComponent(token.id)).then(function (answer) {
        if (answer.status === 204 || answer.status === 404) {
          // 404: gone already (revoked elsewhere, or expired): the list says the same either way.
          item.remove();
          state.tokens = state.tokens.filter(function (other) { return other.id !== token.id; });
          showEmpty();
          announce(t('list.revoked', { name: token.name }));
          $('list-heading').focus();
          return;
        }
        if (answer.status === 401) sessionEnded(error);
        else failed(answer);
      }, function () { failed(null); });

      function failed(answer) {
        error.textContent = t('error.revoke', { name: token.name, message: problem(answer) });
        error.hidden = false;
        yes.disabled = false;
        no.disabled = false;
        yes.textContent = t('list.confirmYes');
      }
    });
    no.focus();
  }

  function showEmpty() {
    $('empty').hidden = state.tokens.length > 0;
    $('tokens').hidden = state.tokens.length === 0;
  }

  function drawList() {
    var list = $('tokens');
    list.textContent = '';
    state.tokens.forEach(function (token) { list.appendChild(tokenItem(token)); });
    showEmpty();
  }

  // ---- the form ------------------------------------------------------------------------------------

  function option(id, label, testId) {
    var item = element('li', { class: 'check' });
    var box = element('input', { type: 'checkbox', id: id, 'data-testid': testId });
    item.appendChild(box);
    item.appendChild(element('label', { for: id }, label));
    return item;
  }

  function drawForm() {
    var days = $('token-days');
    var max = Math.max(1, Number(state.max_days) || 1);
    days.max = String(max);
    if (!days.value || Number(days.value) > max) days.value = String(max);
    $('token-days-hint').textContent = t('form.daysHint', { max: max });

    var options = $('reach-options');
    // Keep what the user ticked across a reload of the list.
    var ticked = {};
    Array.prototype.forEach.call(options.querySelectorAll('input:checked'), function (box) { ticked[box.id] = true; });
    options.textContent = '';
    (state.apps || []).forEach(function (app) {
      options.appendChild(option('reach-app-' + app.id, app.label, 'token-app-' + app.id));
    });
    if (state.backstage) options.appendChild(option('reach-backstage', t('form.backstage'), 'token-backstage'));
    Object.keys(ticked).forEach(function (id) { if ($(id)) $(id).checked = true; });
    options.hidden = !options.children.length;
    var hint = !options.children.length ? 'form.reachNone' : state.backstage ? 'form.reachHintBackstage' : 'form.reachHint';
    $('reach-hint').textContent = t(hint);
    $('create-fields').disabled = false;
  }

  function formError(text) {
    var box = $('create-error');
    box.textContent = text;
    box.hidden = false;
  }

  /** The request the form asks for, or `null` after saying what is missing. */
  function request() {
    var name = $('token-name').value.trim();
    var max = Math.max(1, Number(state.max_days) || 1);
    var field = $('token-days').value.trim();
    var days = field === '' ? max : Number(field);
    if (!name) {
      formError(t('form.nameMissing'));
      $('token-name').setAttribute('aria-invalid', 'true');
      $('token-name').focus();
      return null;
    }
    $('token-name').removeAttribute('aria-invalid');
    // The longest lifetime is the server's to enforce (and to explain); here only what is no number.
    if (!Number.isInteger(days) || days < 1) {
      formError(t('form.daysInvalid', { max: max }));
      $('token-days').setAttribute('aria-invalid', 'true');
      $('token-days').focus();
      return null;
    }
    $('token-days').removeAttribute('aria-invalid');
    var apps = (state.apps || []).filter(function (app) { return $('reach-app-' + app.id).checked; }).map(function (app) { return app.id; });
    var backstage = !!($('reach-backstage') && $('reach-backstage').checked);
    var scope = { read_only: $('token-read-only').checked };
    // Nothing ticked: the token reaches all the user's apps (no `apps`), as the hint says.
    if (apps.length || backstage) {
      scope.apps = apps;
      scope.backstage = backstage;
    }
    return { name: name, expires_in_days: days, scope: scope };
  }

  function create(event) {
    event.preventDefault();
    $('create-error').hidden = true;
    var asked = request();
    if (!asked) return;
    var button = $('create');
    button.disabled = true;
    button.textContent = t('form.creating');
    api('POST', API, asked).then(function (answer) {
      if (answer.status === 201 && answer.body && typeof answer.body.token === 'string') {
        showNew(answer.body);
        $('create-form').reset();
        $('token-days').value = String(state.max_days);
        return load();
      }
      if (answer.status === 401) sessionEnded($('create-error'));
      else formError(t('error.create', { message: problem(answer) }));
    }, function () {
      formError(t('error.create', { message: problem(null) }));
    }).then(function () {
      button.disabled = false;
      button.textContent = t('form.create');
    });
  }

  // ---- the new token -------------------------------------------------------------------------------

  /**
   * Where a script would try the token first: the first app it reaches, else the Backstage API; `null`
   * when it reaches nothing the user may open (then there is nothing to try).
   */
  function tryPath(created) {
    var scope = created.scope || {};
    var apps = Array.isArray(scope.apps) ? scope.apps : (state.apps || []).map(function (app) { return app.id; });
    if (apps.length) return '/apps/' + encodeURIComponent(apps[0]) + '/';
    if (state.backstage && (!Array.isArray(scope.apps) || scope.backstage)) return '/backstage/api/catalog/entities';
    return null;
  }

  function showNew(created) {
    var box = $('new-token');
    $('new-token-heading').textContent = t('new.heading', { name: created.name });
    $('new-token-value').textContent = created.token;
    var path = tryPath(created);
    $('new-token-curl').textContent = path ? 'curl -H "Authorization: Bearer ' + created.token + '" ' + location.origin + path : '';
    $('new-token-try').hidden = !path;
    $('new-token-try-command').hidden = !path;
    $('copy-status').textContent = '';
    box.hidden = false;
    box.scrollIntoView({ block: 'start' });
    box.focus();
  }

  /** Drops the secret from the page: the box is emptied, not only hidden. */
  function forgetNew() {
    var box = $('new-token');
    if (box.hidden) return;
    $('new-token-value').textContent = '';
    $('new-token-curl').textContent = '';
    $('copy-status').textContent = '';
    box.hidden = true;
  }

  function copy(sourceId) {
    var text = $(sourceId).textContent;
    var status = $('copy-status');
    function done() { status.textContent = t('new.copied'); }
    function fallback() {
      // No clipboard API (a page that is not a secure context): select the text so that the user can.
      var range = document.createRange();
      range.selectNodeContents($(sourceId));
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      var ok = false;
      try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
      status.textContent = ok ? t('new.copied') : t('new.copyFailed');
    }
    status.textContent = '';
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, fallback);
    else fallback();
  }

  // ---- loading -------------------------------------------------------------------------------------

  function load() {
    return api('GET', API).then(function (answer) {
      $('list-status').hidden = true;
      if (answer.status === 200 && answer.body && Array.isArray(answer.body.tokens)) {
        $('load-error').hidden = true;
        state = answer.body;
        drawList();
        drawForm();
        return;
      }
      if (answer.status === 401) {
        $('load-error').hidden = false;
        sessionEnded($('load-error-text'));
        $('retry').hidden = true;
        return;
      }
      loadFailed(answer);
    }, function () {
      $('list-status').hidden = true;
      loadFailed(null);
    });
  }

  function loadFailed(answer) {
    $('load-error-text').textContent = t('error.load', { message: problem(answer) });
    $('retry').hidden = false;
    $('load-error').hidden = false;
  }

  function start() {
    $('create-form').addEventListener('submit', create);
    $('copy-token').addEventListener('click', function () { copy('new-token-value'); });
    $('copy-curl').addEventListener('click', function () { copy('new-token-curl'); });
    $('new-token-done').addEventListener('click', function () {
      forgetNew();
      $('list-heading').focus();
    });
    $('retry').addEventListener('click', function () {
      $('load-error').hidden = true;
      $('list-status').hidden = false;
      load();
    });
    // Leaving the page (or the browser keeping it for "back") takes the secret with it.
    window.addEventListener('pagehide', forgetNew);
    load();
  }

  porticoI18n.load(document.documentElement.getAttribute('lang')).then(function (loaded) {
    i18n = loaded;
    start();
  });
})();
