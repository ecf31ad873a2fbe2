// What the catalog says about an app: its owner and links, read as the signed-in user through
// `/backstage/api/catalog` (portico's scope and Backstage's permissions decide what the user sees).
// Used by the home view and by portico's error pages inside an app's frame. No framework, no globals
// but `PorticoCatalog`.
//
// Its texts are the `catalogCard` block of /shell/i18n/<locale>.json, through web/shell/i18n.js (loaded
// here when the page has not loaded it), in the page's language: the `locale` or `i18n` (a translator)
// a caller passes, else `<html lang>`, which the server sets on its error pages and the views set
// when they translate themselves.
(function () {
  'use strict';

  var I18N_SCRIPT = '/shell/i18n.js';
  var i18nScript = null;

  /** web/shell/i18n.js's `porticoI18n`, loaded once if the page has not; null when it cannot be. */
  function i18nApi() {
    if (window.porticoI18n) return Promise.resolve(window.porticoI18n);
    if (!i18nScript) {
      i18nScript = new Promise(function (resolve) {
        var script = document.createElement('script');
        script.src = I18N_SCRIPT;
        script.onload = function () { resolve(window.porticoI18n || null); };
        script.onerror = function () { resolve(null); };
        document.head.appendChild(script);
      });
    }
    return i18nScript;
  }

  /** The translator for `options` (see `render`); null when the texts cannot be had. */
  function translator(options) {
    if (options.i18n) return Promise.resolve(options.i18n);
    var locale = options.locale || document.documentElement.lang || 'en';
    return i18nApi().then(function (api) { return api ? api.load(locale) : null; });
  }

  // The owner line's text, `{owner}` standing for the owner's name (a link when it can be one).
  var OWNER_FALLBACK = 'Owner in the catalog: {owner}';

  /** Fills `parent` with `text`, its `{owner}` replaced by the node `owner`. */
  function withOwner(parent, text, owner) {
    var at = text.indexOf('{owner}');
    if (at < 0) {
      parent.appendChild(document.createTextNode(text + ' '));
      parent.appendChild(owner);
      return parent;
    }
    if (at > 0) parent.appendChild(document.createTextNode(text.slice(0, at)));
    parent.appendChild(owner);
    if (at + 7 < text.length) parent.appendChild(document.createTextNode(text.slice(at + 7)));
    return parent;
  }

  // `kind:namespace/name` -> the by-name path of Backstage's catalog API.
  function entityPath(ref) {
    var match = /^([a-z0-9]+):([^/]+)\/(.+)$/i.exec(ref || '');
    if (!match) return null;
    return '/backstage/api/catalog/entities/by-name/' + [match[1], match[2], match[3]].map(encodeURIComponent).join('/');
  }

  // An owner as written in `spec.owner` (`group:platform`, `platform`, `group:acme/platform`) made a
  // full ref, relative to the entity's namespace, as Backstage reads it.
  function ownerRef(owner, namespace) {
    var kind = 'group';
    var rest = owner;
    var colon = owner.indexOf(':');
    if (colon > 0) {
      kind = owner.slice(0, colon);
      rest = owner.slice(colon + 1);
    }
    if (rest.indexOf('/') < 0) rest = (namespace || 'default') + '/' + rest;
    return (kind + ':' + rest).toLowerCase();
  }

  function safeUrl(url) {
    try {
      var parsed = new URL(url, location.href);
      return /^(https?:|mailto:)$/.test(parsed.protocol) ? parsed.href : null;
    } catch (error) {
      return null;
    }
  }

  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) { node.setAttribute(name, attributes[name]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Fetches the entity `ref` and fills `container` with its owner and links. `catalogLink(ref)` gives
  // the href that opens an entity in the Catalog app (or null: owners are shown as text). `options`
  // may give the language: `{ i18n }` (a translator of web/shell/i18n.js) or `{ locale }`; else the
  // page's `<html lang>`. Resolves to the entity, or null when the user may not see it or the catalog
  // cannot be reached: then the container stays empty and hidden, since the app works without it.
  function render(container, ref, catalogLink, options) {
    var path = entityPath(ref);
    container.hidden = true;
    if (!path) return Promise.resolve(null);
    var texts = translator(options || {});
    var answer = fetch(path, { credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .catch(function () { return null; });
    return Promise.all([answer, texts])
      .then(function (loaded) {
        var entity = loaded[0];
        var i18n = loaded[1];
        if (!entity || !entity.metadata) return null;
        container.textContent = '';
        var owner = entity.spec && entity.spec.owner;
        if (owner) {
          var full = ownerRef(owner, entity.metadata.namespace);
          var href = catalogLink ? catalogLink(full) : null;
          var name = full.replace(/^[^:]+:[^/]+\//, '');
          container.appendChild(withOwner(element('span', { 'data-testid': 'catalog-owner' }),
            i18n ? i18n.t('catalogCard.owner') : OWNER_FALLBACK,
            href ? element('a', { href: href, target: '_top' }, name) : element('span', {}, name)));
        }
        (entity.metadata.links || []).forEach(function (link) {
          var url = safeUrl(link.url);
          if (!url) return;
          container.appendChild(document.createTextNode(' · '));
          container.appendChild(element('a', {
            href: url, target: '_blank', rel: 'noopener noreferrer', 'data-testid': 'catalog-link',
          }, link.title || url));
        });
        container.hidden = container.childNodes.length === 0;
        return entity;
      });
  }

  window.PorticoCatalog = { render: render, ownerRef: ownerRef };
})();
