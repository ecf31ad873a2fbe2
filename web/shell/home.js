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
      list.appendChild(item);
    });
    document.getElementById('no-apps').hidden = (context.apps || []).length > 0;
  }, true);
})();
