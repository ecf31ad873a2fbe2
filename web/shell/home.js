// The portal's home view, a launchpad: a Luigi micro-frontend like any app, drawn from what the shell's
// context says. One tile per app the user may open (`context.apps`, config order), grouped by
// category; above them the user's Favourites and Recently used apps; a filter over all of it.
//
// Where preferences live: favourites and recently used apps are kept in this browser's localStorage,
// under `portico.favourites.<tenant>.<user>` and `portico.recent.<tenant>.<user>` (JSON arrays of app
// ids; recent: most recent first, at most 8). They are conveniences, not access: the server decides
// which apps exist for this user (`context.apps`), ids that are not in it are ignored, so a stale or
// edited list never shows or grants anything. There is no server state: they stay in this browser
// (another browser or device starts empty) and go with the browser's site data. The shell also pushes
// to the recent key when the user opens an app anywhere in the shell, so they are read fresh whenever
// the view is shown, and broken JSON or an unavailable localStorage just means "none".
//
// Texts: every text of the view is a `launchpad.*` key of /shell/i18n/<locale>.json (web/shell/i18n.js),
// in the language the shell chose (`LuigiClient.uxManager().getCurrentLocale()`); home.html's static texts carry
// `data-i18n` keys, the rest is filled here. The view stays hidden until its texts and the context are
// there, and is redrawn when the shell changes the language. What the context says (app labels,
// categories, descriptions, the tenant's title) comes translated from the server and is shown as is.
(function () {
  'use strict';

  // The Luigi package portico embeds (as in home.html's luigi-client URL): its SAP icon font and the
  // icon names' code points, served by portico on this origin and cached for good.
  var LUIGI_FILES = '/shell/luigi/2.31.0/';
  var ICON_MAP_URL = LUIGI_FILES + 'baseTheme/fonts/SAP-icons.json';
  var ICON_FONT = 'portico-sap-icons'; // declared in launchpad.css
  var RECENT_STORED = 8;
  var RECENT_SHOWN = 4;
  var FAVOURITES_STORED = 100;
  // Icon badge colours, picked per app id: white text on each has a contrast of at least 4.5:1.
  var BADGE_COLOURS = ['#0a6ed1', '#107e3e', '#bb0000', '#6c32a9', '#0e6e78', '#a93e00', '#354a5f', '#9e1f63', '#1d6d8c', '#8c5a00'];
  var SVG = 'http://www.w3.org/2000/svg';

  var view = {
    context: null,
    next: null,      // the context to draw once the texts are loaded
    started: false,  // the shell's init has come
    request: 0,      // the latest texts asked for; an older answer is dropped
    apps: [],        // context.apps, in config order
    byId: Object.create(null), // id -> app
    signature: '',   // what the drawn tiles were made from
    catalogApp: null,
  };

  var i18n = null; // the translator of the view's language (web/shell/i18n.js)

  /** The text of `key` in the view's language, `{name}` placeholders filled from `vars`. */
  function t(key, vars) { return i18n.t(key, vars); }

  /** `n` written as the language writes numbers. */
  function number(n) { return new Intl.NumberFormat(i18n.locale).format(n); }

  /** The text of `key + 'One'` or `key + 'Other'`, by the language's plural rule for `count`. */
  function plural(key, count, vars) {
    return t(key + (new Intl.PluralRules(i18n.locale).select(count) === 'one' ? 'One' : 'Other'), vars);
  }

  function lower(value) { return String(value).toLocaleLowerCase(i18n.locale); }

  function byId(id) { return document.getElementById(id); }
  function text(id, value) { byId(id).textContent = value; }

  function element(tag, attributes, content) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      if (attributes[name] !== null && attributes[name] !== undefined) node.setAttribute(name, attributes[name]);
    });
    if (content !== undefined) node.textContent = content;
    return node;
  }

  function svg(viewBox, pathData, className) {
    var icon = document.createElementNS(SVG, 'svg');
    icon.setAttribute('viewBox', viewBox);
    icon.setAttribute('aria-hidden', 'true');
    icon.setAttribute('focusable', 'false');
    icon.setAttribute('class', className);
    var path = document.createElementNS(SVG, 'path');
    path.setAttribute('d', pathData);
    icon.appendChild(path);
    return icon;
  }

  var STAR = 'M12 2.6l2.9 6 6.6.9-4.8 4.6 1.2 6.5L12 17.5l-5.9 3.1 1.2-6.5-4.8-4.6 6.6-.9z';
  var NEW_TAB = 'M14 3h7v7h-2V6.4l-8.3 8.3-1.4-1.4L17.6 5H14V3zM5 5h6v2H5v12h12v-6h2v6a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V7a2 2 0 0 1 2-2z';

  // ---------------------------------------------------------------------------------------------
  // Preferences (see the top of this file)

  function storageKey(kind) {
    var context = view.context;
    return 'portico.' + kind + '.' + context.tenant.id + '.' + context.user.id;
  }

  // The ids stored under `key`: strings, each once, in stored order; [] when anything is off.
  function readIds(key) {
    var raw = null;
    try {
      raw = window.localStorage.getItem(key);
    } catch (error) {
      return [];
    }
    if (!raw) return [];
    var parsed;
    try {
      parsed = JSON.parse(raw);
    } catch (error) {
      return [];
    }
    if (!Array.isArray(parsed)) return [];
    var seen = {};
    return parsed.filter(function (id) {
      if (typeof id !== 'string' || seen[id]) return false;
      seen[id] = true;
      return true;
    });
  }

  function writeIds(key, ids) {
    try {
      window.localStorage.setItem(key, JSON.stringify(ids));
      return true;
    } catch (error) {
      return false; // storage full, disabled or blocked: the preference lasts until the view is drawn again
    }
  }

  // Only ids of apps this user may open now, in the stored order.
  function visible(ids) {
    return ids.filter(function (id) { return Object.prototype.hasOwnProperty.call(view.byId, id); });
  }

  function favourites() { return visible(readIds(storageKey('favourites'))); }
  function recents() { return visible(readIds(storageKey('recent'))); }

  function isFavourite(id) { return favourites().indexOf(id) >= 0; }

  // Stored ids of apps not visible now are kept: a role lost for a while does not wipe the list.
  function setFavourite(id, on) {
    var key = storageKey('favourites');
    var ids = readIds(key).filter(function (other) { return other !== id; });
    if (on) ids.push(id);
    writeIds(key, ids.slice(-FAVOURITES_STORED));
  }

  function recordRecent(id) {
    var key = storageKey('recent');
    var ids = readIds(key).filter(function (other) { return other !== id; });
    ids.unshift(id);
    writeIds(key, ids.slice(0, RECENT_STORED));
  }

  // ---------------------------------------------------------------------------------------------
  // Icons: the app's SAP icon from Luigi's icon font when the font and its name map load, else (and
  // until then) a badge with the label's initials. Both are drawn by CSS from data attributes, so the
  // tile's text is only what it says (its label, category, owner, description).

  var iconsLoading = null;
  function iconGlyphs() {
    if (!iconsLoading) {
      iconsLoading = fetch(ICON_MAP_URL, { credentials: 'same-origin' })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (map) {
          if (!map || !document.fonts) return null;
          var glyphs = {};
          Object.keys(map).forEach(function (codePoint) {
            var glyph = String.fromCodePoint(parseInt(codePoint, 16));
            ((map[codePoint] && map[codePoint].names) || []).forEach(function (name) { glyphs[name] = glyph; });
          });
          return document.fonts.load('1em "' + ICON_FONT + '"', glyphs.home || '\ue070')
            .then(function (faces) { return faces.length ? glyphs : null; });
        })
        .catch(function () { return null; });
    }
    return iconsLoading;
  }

  function showIcons() {
    var badges = document.querySelectorAll('.lp-icon[data-icon]:not(.has-glyph)');
    if (!badges.length) return;
    iconGlyphs().then(function (glyphs) {
      if (!glyphs) return;
      document.querySelectorAll('.lp-icon[data-icon]:not(.has-glyph)').forEach(function (badge) {
        var glyph = glyphs[badge.getAttribute('data-icon')];
        if (!glyph) return; // an unknown icon name: the initials stay
        badge.setAttribute('data-glyph', glyph);
        badge.classList.add('has-glyph');
      });
    });
  }

  function initials(label) {
    var words = String(label).trim().split(/\s+/).filter(Boolean);
    if (!words.length) return '?';
    var letters = words.length > 1
      ? Array.from(words[0])[0] + Array.from(words[1])[0]
      : Array.from(words[0]).slice(0, 2).join('');
    return letters.toUpperCase();
  }

  function badgeColour(id) {
    var hash = 0;
    for (var i = 0; i < id.length; i += 1) hash = (hash * 31 + id.charCodeAt(i)) >>> 0;
    return BADGE_COLOURS[hash % BADGE_COLOURS.length];
  }

  // ---------------------------------------------------------------------------------------------
  // Tiles

  // A plain left click: no modifier key (those mean a new tab or window, which the link's href does).
  function plainClick(event) {
    return event.button === 0 && !event.ctrlKey && !event.metaKey && !event.shiftKey && !event.altKey && !event.defaultPrevented;
  }

  function openApp(app) {
    recordRecent(app.id);
    refreshShortcuts();
    LuigiClient.linkManager().navigate(app.path);
  }

  function catalogLink(ref) {
    return view.catalogApp ? view.catalogApp.path + '?~entity=' + encodeURIComponent(ref) : null;
  }

  // `withCatalog`: the tile in the app's category group shows what the catalog says about it; the
  // shortcut copies above do not (one fetch, one card per app).
  function tile(app, withCatalog) {
    var item = element('li', { 'class': 'lp-tile', 'data-testid': 'home-tile-' + app.id, 'data-app-id': app.id });
    item.setAttribute('data-search', lower([app.label, app.description, app.category, app.owner]
      .filter(Boolean).join('\n')));

    var badge = element('span', { 'class': 'lp-icon', 'aria-hidden': 'true', 'data-initials': initials(app.label), 'data-icon': app.icon });
    badge.style.backgroundColor = badgeColour(app.id);
    item.appendChild(badge);

    var body = element('div', { 'class': 'lp-body' });
    // The label links to the app's shell path: a new tab (middle or ctrl-click, "open in new tab")
    // opens the shell there; a plain click navigates inside this shell. Its ::after covers the tile.
    var title = element('p', { 'class': 'lp-title' });
    var link = element('a', { 'class': 'lp-link', href: app.path, target: '_top', 'data-focus': 'link', 'data-testid': 'home-link-' + app.id }, app.label);
    link.addEventListener('click', function (event) {
      if (!plainClick(event)) return;
      event.preventDefault();
      openApp(app);
    });
    title.appendChild(link);
    if (app.category || app.owner) {
      // The label and its facts read as one line of text ("Payments Console · Operations · owned by
      // team-payments") for screen readers and copy and paste; on screen the facts go below the label
      // and the first separator takes no room. The owner wraps as a whole when it can.
      title.appendChild(element('span', { 'class': 'lp-sep' }, ' · '));
      var facts = element('span', { 'class': 'lp-facts' }, app.category && app.owner ? app.category + ' · ' : app.category || undefined);
      if (app.owner) facts.appendChild(element('span', { 'class': 'lp-owner' }, t('launchpad.tile.ownedBy', { owner: app.owner })));
      title.appendChild(facts);
    }
    body.appendChild(title);
    if (app.degraded) {
      // The health watch finds it not answering: said in words, with the owner to ask.
      var since = i18n.when(app.degraded.since);
      body.appendChild(element('p', { 'class': 'lp-degraded', 'data-testid': 'home-degraded-' + app.id },
        app.owner ? t('launchpad.tile.degradedOwned', { time: since, owner: app.owner }) : t('launchpad.tile.degraded', { time: since })));
    }
    if (app.description) body.appendChild(element('p', { 'class': 'lp-desc' }, app.description));

    if (withCatalog && app.catalogRef && window.PorticoCatalog) {
      // Owner and links from the catalog, read as this user; the owner opens in the Catalog app.
      var card = element('div', { 'class': 'meta catalog-card', 'data-testid': 'home-catalog-' + app.id });
      body.appendChild(card);
      PorticoCatalog.render(card, app.catalogRef, catalogLink).then(function () {
        card.querySelectorAll('a[target="_top"]').forEach(function (owner) {
          owner.addEventListener('click', function (event) {
            if (!plainClick(event) || !view.catalogApp) return;
            event.preventDefault();
            var ref = new URL(owner.href).searchParams.get('~entity');
            LuigiClient.linkManager().withParams({ entity: ref }).navigate(view.catalogApp.path);
          });
        });
      });
    }

    var newTab = element('a', {
      'class': 'lp-newtab', href: app.path, target: '_blank', rel: 'noopener', 'data-focus': 'newtab', 'data-testid': 'home-newtab-' + app.id,
    });
    newTabText(newTab, app.label);
    newTab.appendChild(svg('0 0 24 24', NEW_TAB, 'lp-newtab-icon'));
    body.appendChild(newTab);
    item.appendChild(body);

    var star = element('button', {
      type: 'button', 'class': 'lp-star', 'data-focus': 'star', 'data-testid': 'home-star-' + app.id,
      'aria-label': t('launchpad.tile.favourite', { app: app.label }), 'aria-pressed': 'false', title: t('launchpad.tile.addFavourite'),
    });
    star.appendChild(svg('0 0 24 24', STAR, 'lp-star-icon'));
    star.addEventListener('click', function () {
      var on = star.getAttribute('aria-pressed') !== 'true';
      setFavourite(app.id, on);
      refreshShortcuts();
      // Starred in Recently used or unstarred in Favourites, this tile is gone: the focus goes to the
      // app's star where it is now (Favourites, Recently used, or its category group).
      if (!document.body.contains(star)) {
        var same = ['favourites', 'recent', 'apps'].map(function (where) {
          return byId(where).querySelector(focusTarget(app.id, 'star') + ':not([hidden] *)');
        }).filter(Boolean)[0];
        if (same) same.focus();
      }
    });
    item.appendChild(star);
    return item;
  }

  // "Open {app} in a new tab": on screen without the app's name (the tile says it), for screen readers
  // with it, so each tile's link has its own name. When the language puts the name first ("{app} in
  // neuem Tab öffnen"), what is on screen starts with a capital letter.
  function newTabText(link, label) {
    var template = t('launchpad.tile.openInNewTab'); // no vars: `{app}` stays in
    var at = template.indexOf('{app}');
    if (at < 0) {
      link.appendChild(document.createTextNode(template));
      return;
    }
    var before = template.slice(0, at).replace(/\s+$/, '');
    var after = template.slice(at + '{app}'.length);
    if (before) {
      link.appendChild(document.createTextNode(before));
      link.appendChild(element('span', { 'class': 'visually-hidden' }, ' ' + label));
    } else {
      after = after.replace(/^\s+/, '');
      after = after.charAt(0).toLocaleUpperCase(i18n.locale) + after.slice(1);
      link.appendChild(element('span', { 'class': 'visually-hidden' }, label + ' '));
    }
    if (after) link.appendChild(document.createTextNode(after));
  }

  // The selector of one focusable part ('link', 'star', 'newtab') of an app's tile.
  function focusTarget(id, part) {
    return '[data-app-id="' + CSS.escape(id) + '"] [data-focus="' + part + '"]';
  }

  // A category's test id: lower case ASCII, accents dropped (`Überblick` -> `uberblick`).
  function slug(value) {
    return String(value).normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase().replace(/ß/g, 'ss')
      .replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'group';
  }

  // One section per category, in the order categories first appear; apps without one last.
  function drawGroups() {
    var container = byId('apps');
    container.textContent = '';
    var order = [];
    var groups = {};
    view.apps.forEach(function (app) {
      var key = app.category ? 'c:' + app.category : 'other';
      if (!groups[key]) {
        groups[key] = { title: app.category || t('launchpad.otherApps'), apps: [] };
        if (key !== 'other') order.push(key);
      }
      groups[key].apps.push(app);
    });
    if (groups.other) order.push('other');
    order.forEach(function (key, index) {
      var group = groups[key];
      var headingId = 'group-' + index;
      var section = element('section', {
        'class': 'lp-group', 'aria-labelledby': headingId,
        'data-testid': 'home-group-' + (key === 'other' ? 'other' : slug(group.title)),
      });
      section.appendChild(element('h2', { id: headingId }, group.title));
      var list = element('ul', { 'class': 'lp-grid' });
      group.apps.forEach(function (app) { list.appendChild(tile(app, true)); });
      section.appendChild(list);
      container.appendChild(section);
    });
  }

  // Favourites, then Recently used. An app stays in its category group as well: the groups are the
  // complete, stable map of the user's apps (a tile never moves away from where it was found), the
  // two sections above are shortcuts. Recently used leaves out favourites, which sit just above it.
  function refreshShortcuts() {
    if (!view.context) return;
    var favs = favourites();
    var recent = recents().filter(function (id) { return favs.indexOf(id) < 0; }).slice(0, RECENT_SHOWN);
    fillShortcuts('favourites', favs);
    fillShortcuts('recent', recent);
    document.querySelectorAll('.lp-star').forEach(function (star) {
      var id = star.closest('[data-app-id]').getAttribute('data-app-id');
      var on = favs.indexOf(id) >= 0;
      star.setAttribute('aria-pressed', on ? 'true' : 'false');
      star.title = t(on ? 'launchpad.tile.removeFavourite' : 'launchpad.tile.addFavourite');
    });
    applyFilter();
    showIcons();
  }

  function fillShortcuts(sectionId, ids) {
    var section = byId(sectionId);
    var list = section.querySelector('ul');
    var drawn = Array.prototype.map.call(list.children, function (item) { return item.getAttribute('data-app-id'); });
    if (drawn.join('\n') !== ids.join('\n')) {
      // Redrawn only when the list changed, so focus and hover stay put on a mere re-read.
      var focused = list.contains(document.activeElement) ? document.activeElement : null;
      list.textContent = '';
      ids.forEach(function (id) { list.appendChild(tile(view.byId[id], false)); });
      var item = focused && focused.closest('[data-app-id]');
      if (item && focused.hasAttribute('data-focus')) {
        var again = list.querySelector(focusTarget(item.getAttribute('data-app-id'), focused.getAttribute('data-focus')));
        if (again) again.focus();
      }
    }
    section.setAttribute('data-count', String(ids.length));
  }

  // ---------------------------------------------------------------------------------------------
  // The filter: every word typed must appear in the app's label, description, category or owner.

  function applyFilter() {
    var query = byId('filter').value.trim();
    var words = lower(query).split(/\s+/).filter(Boolean);
    document.querySelectorAll('.lp-tile').forEach(function (item) {
      var haystack = item.getAttribute('data-search') || '';
      item.hidden = !words.every(function (word) { return haystack.indexOf(word) >= 0; });
    });
    document.querySelectorAll('.lp-group').forEach(function (section) {
      section.hidden = !section.querySelector('.lp-tile:not([hidden])');
    });
    var shown = byId('apps').querySelectorAll('.lp-tile:not([hidden])').length;
    var total = view.apps.length;
    var noMatch = words.length > 0 && shown === 0;
    byId('no-match').hidden = !noMatch;
    text('no-match-text', noMatch ? t('launchpad.filter.noMatchQuery', { query: query }) : '');
    // The status line is the announcement for screen readers; with no match the notice says it on screen.
    byId('filter-status').classList.toggle('visually-hidden', noMatch);
    text('filter-status', !words.length ? ''
      : noMatch ? t('launchpad.filter.noMatch')
        : plural('launchpad.filter.match', total, { shown: number(shown), total: number(total) }));
  }

  function clearFilter() {
    var input = byId('filter');
    input.value = '';
    applyFilter();
    input.focus();
  }

  function wireFilter() {
    var input = byId('filter');
    input.addEventListener('input', applyFilter);
    input.addEventListener('search', applyFilter);
    input.addEventListener('keydown', function (event) {
      if (event.key === 'Escape' && input.value) {
        event.preventDefault();
        clearFilter();
      }
    });
    byId('clear-filter').addEventListener('click', clearFilter);
  }

  // ---------------------------------------------------------------------------------------------
  // The whole view

  function draw(context) {
    view.context = context;
    view.apps = (context.apps || []).filter(function (app) { return app && typeof app.id === 'string'; });
    view.byId = Object.create(null);
    view.apps.forEach(function (app) { view.byId[app.id] = app; });
    // Owners in the catalog open in the Catalog app, when the user has it.
    view.catalogApp = view.byId.catalog || null;

    var user = context.user || { name: '', groups: [] };
    var groups = user.groups || [];
    var roles = context.roles || [];
    text('home-greeting', t('launchpad.greeting', { name: user.name }));
    text('tenant', t('launchpad.tenant', { tenant: context.tenant.title, id: context.tenant.id }));
    text('roles', roles.length ? roles.join(', ') : t('launchpad.access.none'));
    text('groups', groups.length ? groups.join(', ') : t('launchpad.access.none'));

    var signature = JSON.stringify(view.apps);
    if (signature !== view.signature) {
      view.signature = signature;
      byId('favourites').querySelector('ul').textContent = '';
      byId('recent').querySelector('ul').textContent = '';
      drawGroups();
    }

    var none = view.apps.length === 0;
    byId('filter-bar').hidden = none;
    byId('no-apps').hidden = !none;
    if (none) {
      var facts = { tenant: context.tenant.title, roles: roles.join(', '), groups: groups.join(', ') };
      text('no-apps-why', t(roles.length ? 'launchpad.noApps.rolesGiveNoApp'
        : groups.length ? 'launchpad.noApps.groupsMapToNoRole' : 'launchpad.noApps.noGroups', facts));
    }
    refreshShortcuts();
  }

  // Draws `context` (or, given none, what is drawn already) in the language the shell says, once its
  // texts are loaded. A change of language redraws everything; a later call wins over an earlier one.
  function show(context) {
    view.started = true;
    if (context) view.next = context;
    // (Luigi Client 2.x has it on uxManager, not at its top level.)
    var locale = porticoI18n.supported(LuigiClient.uxManager().getCurrentLocale() || 'en');
    var request = ++view.request;
    var texts = i18n && i18n.locale === locale ? Promise.resolve(i18n) : porticoI18n.load(locale);
    texts.then(function (translator) {
      if (request !== view.request) return;
      if (translator !== i18n) {
        i18n = translator;
        i18n.apply(document); // home.html's own texts, <title> and <html lang>
        view.signature = ''; // the tiles say things too
        if (!view.next) view.next = view.context;
      }
      var next = view.next;
      view.next = null;
      if (next) draw(next);
      else refreshShortcuts();
      byId('launchpad').hidden = !view.context;
    });
  }

  wireFilter();

  LuigiClient.addInitListener(function (context, origin) {
    // Only the shell on this origin may talk to this view (Luigi's micro-frontend security guidance).
    if (origin !== location.origin) return;
    show(context);
  }, true);

  // Shown again (Luigi reuses this frame when the user comes back home): new context, fresh preferences.
  // The shell's change of language comes this way too.
  LuigiClient.addContextUpdateListener(function (context) {
    if (!view.started) return;
    show(context && context.tenant && context.user && Array.isArray(context.apps) ? context : null);
  });
  // The shell, or another tab, changed a preference.
  window.addEventListener('storage', function (event) {
    if (event.key === null || /^portico\.(favourites|recent)\./.test(event.key)) refreshShortcuts();
  });
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'visible') refreshShortcuts();
  });
  window.addEventListener('focus', refreshShortcuts);
})();
