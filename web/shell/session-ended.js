// Loaded by the "session ended" page when it shows inside an app's iframe: tells the shell (same origin
// only), which then sends the whole window to sign in. The iframe itself may not navigate the top window.
(function () {
  'use strict';
  if (window.parent !== window) {
    window.parent.postMessage({ portico: 'session-ended' }, location.origin);
  }
})();
