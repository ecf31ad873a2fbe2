// portico's error page for an app the user may open: the app's owner and links from the catalog,
// read as the user (catalog-card.js). The page works without it.
(function () {
  'use strict';
  var card = document.getElementById('catalog-card');
  if (card && window.PorticoCatalog) {
    PorticoCatalog.render(card, card.getAttribute('data-catalog-ref'), null);
  }
})();
