// portico shell bootstrap: fetches the signed-in user's Luigi config (built and role-filtered on the
// server), adds the few parts Luigi only accepts as functions, and starts Luigi. Static, so the shell's
// CSP can stay `script-src 'self'`. It holds no token: the session lives in an HttpOnly cookie.
(function () {
  'use strict';

  function signIn() {
    var here = location.pathname + location.search + location.hash;
    location.assign('/auth/login?return_to=' + encodeURIComponent(here));
  }

  function showError(message) {
    var box = document.createElement('div');
    box.className = 'portico-fatal';
    box.setAttribute('role', 'alert');
    box.textContent = message;
    document.body.appendChild(box);
    var loading = document.querySelector('[luigi-app-loading-indicator]');
    if (loading) loading.remove();
  }

  function signOut(csrfToken) {
    return fetch('/auth/logout', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'X-Portico-CSRF': csrfToken, 'Accept': 'application/json' }
    })
      .then(function (response) { return response.json().catch(function () { return {}; }); })
      .then(function (body) { location.assign(body.redirect || '/auth/login'); })
      .catch(function () { location.assign('/auth/login'); });
  }

  // An app's iframe that finds the session gone asks the shell to sign in again (see session-ended.js).
  window.addEventListener('message', function (event) {
    if (event.origin === location.origin && event.data && event.data.portico === 'session-ended') signIn();
  });

  fetch('/shell/config.json', { credentials: 'same-origin', headers: { 'Accept': 'application/json' } })
    .then(function (response) {
      if (response.status === 401) {
        signIn();
        return null;
      }
      if (!response.ok) throw new Error('the portal configuration could not be loaded (HTTP ' + response.status + ')');
      return response.json();
    })
    .then(function (shell) {
      if (!shell) return;
      var config = shell.luigi;
      var user = shell.portico.user;
      config.navigation.profile.staticUserInfoFn = function () { return Promise.resolve(user); };
      config.navigation.profile.logout.customLogoutFn = function () { signOut(shell.portico.csrfToken); };
      window.portico = { csrfToken: shell.portico.csrfToken, signOut: function () { return signOut(shell.portico.csrfToken); } };
      Luigi.setConfig(config);
    })
    .catch(function (error) { showError(String(error.message || error)); });
})();
