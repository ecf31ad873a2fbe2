// The portal's home view, a Luigi micro-frontend like any app: it renders what the shell's context says.
(function () {
  'use strict';
  function text(id, value) { document.getElementById(id).textContent = value; }

  LuigiClient.addInitListener(function (context, origin) {
    // Only the shell on this origin may talk to this view (Luigi's micro-frontend security guidance).
    if (origin !== location.origin) return;
    text('home-greeting', 'Welcome, ' + context.user.name);
    text('tenant', context.tenant.title + ' (tenant ' + context.tenant.id + ')');
    text('roles', context.roles.length ? context.roles.join(', ') : 'none');
    text('groups', context.user.groups.length ? context.user.groups.join(', ') : 'none');
    var list = document.getElementById('apps');
    // Owners in the catalog open in the Catalog app, when the user has it.
    var catalogApp = (context.apps || []).filter(function (app) { return app.id === 'catalog'; })[0];
    function catalogLink(ref) {
      return catalogApp ? catalogApp.path + '?~entity=' + encodeURIComponent(ref) : null;
    }
    (context.apps || []).forEach(function (app) {
      var item = document.createElement('li');
      var link = document.createElement('a');
      link.href = '#';
      link.textContent = app.label;
      link.addEventListener('click', function (event) {
        event.preventDefault();
        LuigiClient.linkManager().navigate(app.path);
      });
      item.appendChild(link);
      if (app.category) {
        var category = document.createElement('span');
        category.className = 'meta';
        category.textContent = ' · ' + app.category;
        item.appendChild(category);
      }
      if (app.owner) {
        item.appendChild(Object.assign(document.createElement('span'), {
          className: 'meta', textContent: ' · owned by ' + app.owner,
        }));
      }
      if (app.catalogRef && window.PorticoCatalog) {
        // Owner and links from the catalog, read as this user.
        var card = Object.assign(document.createElement('div'), { className: 'meta catalog-card' });
        card.setAttribute('data-testid', 'home-catalog-' + app.id);
        item.appendChild(card);
        PorticoCatalog.render(card, app.catalogRef, catalogLink).then(function () {
          card.querySelectorAll('a[target="_top"]').forEach(function (link) {
            link.addEventListener('click', function (event) {
              event.preventDefault();
              var ref = new URL(link.href).searchParams.get('~entity');
              LuigiClient.linkManager().withParams({ entity: ref }).navigate(catalogApp.path);
            });
          });
        });
      }
      list.appendChild(item);
    });
    document.getElementById('no-apps').hidden = (context.apps || []).length > 0;
  }, true);
})();
