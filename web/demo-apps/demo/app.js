// Demo micro-app: renders the Luigi context it receives (user, tenant, roles, app, view).
(function () {
  'use strict';
  function show(id, value) {
    document.querySelector('[data-testid="' + id + '"]').textContent = value;
  }

  function render(context) {
    var app = context.app || {};
    show('app-title', app.label || 'Demo app');
    show('ctx-user', context.user ? context.user.name + ' (' + context.user.id + ')' : '–');
    show('ctx-email', context.user ? context.user.email : '–');
    show('ctx-tenant', context.tenant ? context.tenant.title + ' (' + context.tenant.id + ')' : '–');
    show('ctx-roles', context.roles && context.roles.length ? context.roles.join(', ') : 'none');
    show('ctx-app', app.id ? app.id + (app.owner ? ' · owned by ' + app.owner : '') : '–');
    show('ctx-view', context.view || '/');
    show('ctx-location', location.pathname);
  }

  LuigiClient.addInitListener(function (context, origin) {
    // Accept the shell only from this origin (Luigi's micro-frontend security guideline).
    if (origin !== location.origin) return;
    render(context);
  }, true);
  LuigiClient.addContextUpdateListener(render);
})();
