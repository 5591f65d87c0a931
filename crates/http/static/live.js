// migrate-hub: live updates of a run's grid. An element with data-live-src is replaced by a fresh copy
// from that URL every two seconds while its data-live attribute is "true" (the server sets it to "false"
// once the run is finished); when the run ends, the rest of the page (its header: status, finished time,
// buttons) is refreshed too. Also: a target form's port follows the engine until someone types one, and a
// file input marked data-directory becomes a folder picker (`webkitdirectory`, which is not in HTML itself:
// without JavaScript it picks files).
// Without JavaScript the pages still work; reload to see progress.
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
          if (fresh.getAttribute('data-live') !== 'true') {
            refreshPage();
          } else {
            poll(fresh);
          }
        })
        .catch(function () {
          // A failed refresh (network, a restart) is retried; the page keeps its last good state.
          poll(element);
        });
    }, INTERVAL_MS);
  }

  // The run ended: the page's own parts (status, finished time, the buttons that still apply) are fetched
  // again and swapped in, where the reader is.
  function refreshPage() {
    fetch(window.location.href, { headers: { Accept: 'text/html' }, credentials: 'same-origin' })
      .then(function (response) {
        if (!response.ok) throw new Error('HTTP ' + response.status);
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, 'text/html').querySelector('main');
        var main = document.querySelector('main');
        if (fresh && main) main.replaceWith(fresh);
      })
      .catch(function () { /* the grid already shows the end; a reload shows the rest */ });
  }

  // A target form: the port follows the engine's default until someone types a port.
  var DEFAULT_PORTS = { postgres: '5432', mysql: '3306' };
  document.querySelectorAll('select[name="engine"]').forEach(function (engine) {
    var port = engine.form && engine.form.querySelector('input[name="port"]');
    if (!port) return;
    var typed = false;
    port.addEventListener('input', function () { typed = true; });
    engine.addEventListener('change', function () {
      var isDefault = port.value === '' || Object.keys(DEFAULT_PORTS).some(function (k) { return DEFAULT_PORTS[k] === port.value; });
      if (!typed && isDefault && DEFAULT_PORTS[engine.value]) port.value = DEFAULT_PORTS[engine.value];
    });
  });

  // A folder picker: every file of the chosen folder, each sent with its path in the folder.
  document.querySelectorAll('input[type="file"][data-directory]').forEach(function (input) {
    input.setAttribute('webkitdirectory', '');
  });

  document.querySelectorAll('[data-live-src]').forEach(poll);
})();
