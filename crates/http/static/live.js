// migrate-hub: live updates of a run's grid. An element with data-live-src is replaced by a fresh copy
// from that URL every two seconds while its data-live attribute is "true" (the server sets it to "false"
// once the run is finished). Without JavaScript the page still works; reload to see progress.
(function () {
  'use strict';
  var INTERVAL_MS = 2000;

  function poll(element) {
    if (element.getAttribute('data-live') !== 'true') return;
    var src = element.getAttribute('data-live-src');
    window.setTimeout(function () {
      fetch(src, { headers: { Accept: 'text/html' }, credentials: 'same-origin' })
        .then(function (response) {
          if (!response.ok) throw new Error('HTTP ' + response.status);
          return response.text();
        })
        .then(function (html) {
          var holder = document.createElement('div');
          holder.innerHTML = html;
          var fresh = holder.querySelector('[data-live-src]');
          if (!fresh) throw new Error('no live element in the answer');
          element.replaceWith(fresh);
          poll(fresh);
        })
        .catch(function () {
          // A failed refresh (network, a restart) is retried; the page keeps its last good state.
          poll(element);
        });
    }, INTERVAL_MS);
  }

  document.querySelectorAll('[data-live-src]').forEach(poll);
})();
