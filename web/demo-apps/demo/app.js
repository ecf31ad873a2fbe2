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

  // The Team Directory's own routes: /people and /people/<id> inside the app. The shell opens any
  // path below the app in this frame (Luigi's virtual tree), and following a link here moves the
  // shell's address along without reloading the frame (withoutSync), so every person has a link.
  var PEOPLE = [
    { id: '42', name: 'Ada Lovelace', team: 'Analytics' },
    { id: '7', name: 'Grace Hopper', team: 'Compilers' },
    { id: '12', name: 'Alan Turing', team: 'Security' }
  ];
  var base = '';

  function showPerson(id) {
    var person = PEOPLE.filter(function (p) { return p.id === id; })[0];
    var box = document.getElementById('person');
    box.hidden = !id;
    box.textContent = person ? person.name + ' · ' + person.team : id ? 'No person with id ' + id : '';
  }

  function routeInApp() {
    var inside = location.pathname.slice(base.length);
    var match = /^\/people(?:\/([^/]+))?\/?$/.exec(inside);
    return match ? { person: match[1] || null } : null;
  }

  function renderPeople(context) {
    var app = context.app || {};
    var section = document.getElementById('people');
    if (app.id !== 'team-directory') return;
    base = '/apps/' + app.id;
    section.hidden = false;
    var list = document.getElementById('people-list');
    list.textContent = '';
    PEOPLE.forEach(function (person) {
      var item = document.createElement('li');
      var link = document.createElement('a');
      // A real link to the shell's address of the page: it opens in a new tab as it should.
      link.href = '/home/' + app.id + '/people/' + person.id;
      link.target = '_top';
      link.textContent = person.name;
      link.setAttribute('data-testid', 'person-link-' + person.id);
      link.addEventListener('click', function (event) {
        if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
        event.preventDefault();
        history.pushState(null, '', base + '/people/' + person.id);
        show('ctx-location', location.pathname);
        showPerson(person.id);
        LuigiClient.linkManager().fromVirtualTreeRoot().withoutSync().navigate('/people/' + person.id);
      });
      item.appendChild(link);
      list.appendChild(item);
    });
    var route = routeInApp();
    showPerson(route ? route.person : null);
  }

  LuigiClient.addInitListener(function (context, origin) {
    // Accept the shell only from this origin (Luigi's micro-frontend security guideline).
    if (origin !== location.origin) return;
    render(context);
    renderPeople(context);
  }, true);
  LuigiClient.addContextUpdateListener(render);
})();
