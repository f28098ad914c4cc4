/* medcode-kg query UI: starts YASGUI (served from /static/vendor) on the /sparql page.
 * Configuration comes from the page's <script type="application/json" id="query-ui-config"> block:
 * {endpoint, prefixes: {prefix: iri}, tabs: [{name, title, description, query}]}.
 * No third-party services: the prefix.cc and LOV autocompleters are off, the endpoint list holds only this
 * server, and nothing is kept in localStorage (each visit starts from the named queries). */
(function () {
  "use strict";
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }

  function start() {
  var configEl = document.getElementById("query-ui-config");
  var root = document.getElementById("yasgui");
  var status = document.getElementById("query-ui-status");
  if (!configEl || !root) return;
  if (typeof window.Yasgui !== "function") {
    if (status) status.textContent = "The query editor could not be loaded; use the plain form below.";
    return;
  }
  var config = JSON.parse(configEl.textContent);
  var Yasgui = window.Yasgui;
  var Yasqe = Yasgui.Yasqe;
  var endpoint = new URL(config.endpoint, window.location.href).toString();

  // Prefix completion from the project's own prefixes (the stock completer may call prefix.cc).
  var prefixLines = Object.keys(config.prefixes).sort().map(function (p) {
    return p + ": <" + config.prefixes[p] + ">";
  });
  if (!Yasqe.Autocompleters["medcode-prefixes"]) {
    Yasqe.forkAutocompleter("prefixes", {
      name: "medcode-prefixes",
      persistenceId: null,
      get: function () { return Promise.resolve(prefixLines); }
    }, false);
  }
  // Only local completers: never LOV (property/class) or prefix.cc (prefixes).
  var completers = ["variables", "medcode-prefixes"];
  Yasqe.defaults.autocompleters = completers.slice();
  Yasgui.defaults.yasqe.autocompleters = completers.slice();
  Yasqe.defaults.prefixCcApi = null;
  Yasgui.defaults.requestConfig.endpoint = endpoint;

  // a new tab ("+") starts with the predeclared prefixes written out, so the editor's checker knows them
  var newTabQuery = Object.keys(config.prefixes).map(function (p) {
    return "PREFIX " + p + ": <" + config.prefixes[p] + ">";
  }).join("\n") + "\n\nSELECT ?code ?label WHERE {\n  ?c a mc:Code ; skos:notation ?code ; skos:prefLabel ?label .\n}" +
    "\nLIMIT 10\n";

  var yasgui = new Yasgui(root, {
    persistenceId: null,          // no localStorage: tabs always come from queries/
    populateFromUrl: false,
    autoAddOnInit: false,
    autofocus: false,
    copyEndpointOnNewTab: true,
    tabName: "Query",
    endpointCatalogueOptions: {
      getData: function () { return [{ endpoint: endpoint }]; }
    },
    requestConfig: {
      endpoint: endpoint,
      method: "POST",
      acceptHeaderSelect: "application/sparql-results+json",
      acceptHeaderGraph: "text/turtle"
    },
    yasqe: {
      autocompleters: completers.slice(),
      prefixCcApi: null,
      createShortLink: undefined,
      resizeable: true,
      editorHeight: "320px",
      value: newTabQuery
    },
    yasr: { prefixes: config.prefixes }
  });
  // lodash merge combines arrays by index, so set the completer list on the instance as well
  yasgui.config.yasqe.autocompleters = completers.slice();

  var tabs = config.tabs.length ? config.tabs : [{ name: "query", title: "Query", query: "" }];
  tabs.forEach(function (q, i) {
    yasgui.addTab(i === 0, {
      name: q.name || q.title,
      yasqe: { value: q.query },
      requestConfig: { endpoint: endpoint }
    });
  });
  root.setAttribute("data-ready", "true");
  document.body.classList.add("has-query-ui");
  if (status) {
    status.textContent = "One tab per named query in queries/; edit a query and run it with the \u25B6 button " +
      "or Ctrl-Enter. The plain form below works without JavaScript.";
  }
  var plain = document.getElementById("plain-form");
  if (plain) plain.removeAttribute("open");
  // IRIs under the site's base (https://w3id.org/medcode/...) open this server's own pages
  var siteBase = config.siteBase, localRoot = config.localRoot;
  if (siteBase && localRoot && window.MutationObserver) {
    var localise = function (scope) {
      var links = scope.querySelectorAll ? scope.querySelectorAll('a[href^="' + siteBase + '"]') : [];
      Array.prototype.forEach.call(links, function (a) {
        a.setAttribute("href", localRoot + a.getAttribute("href").slice(siteBase.length));
      });
    };
    new MutationObserver(function (records) {
      records.forEach(function (r) { Array.prototype.forEach.call(r.addedNodes, localise); });
    }).observe(root, { childList: true, subtree: true });
    localise(root);
  }
  window.medcodeYasgui = yasgui;
}
})();
