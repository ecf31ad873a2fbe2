// What the catalog says about an app: its owner and links, read as the signed-in user through
// `/backstage/api/catalog` (portico's scope and Backstage's permissions decide what the user sees).
// Used by the home view and by portico's error pages inside an app's frame. No framework, no globals
// but `PorticoCatalog`.
(function () {
  'use strict';

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
  // the href that opens an entity in the Catalog app (or null: owners are shown as text). Resolves
  // to the entity, or null when the user may not see it or the catalog cannot be reached: then the
  // container stays empty and hidden, since the app works without it.
  function render(container, ref, catalogLink) {
    var path = entityPath(ref);
    container.hidden = true;
    if (!path) return Promise.resolve(null);
    return fetch(path, { credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .catch(function () { return null; })
      .then(function (entity) {
        if (!entity || !entity.metadata) return null;
        container.textContent = '';
        var owner = entity.spec && entity.spec.owner;
        if (owner) {
          var line = element('span', { 'data-testid': 'catalog-owner' });
          line.appendChild(document.createTextNode('Owner in the catalog: '));
          var full = ownerRef(owner, entity.metadata.namespace);
          var href = catalogLink ? catalogLink(full) : null;
          var name = full.replace(/^[^:]+:[^/]+\//, '');
          line.appendChild(href ? element('a', { href: href, target: '_top' }, name) : element('span', {}, name));
          container.appendChild(line);
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
