// Starts GraphiQL on /graphql from the files beside this one (no CDN, no inline script: the page's CSP is 'self').
// The API wants "Authorization: Bearer <API token>": put it under Headers; GraphiQL keeps it in this browser's
// localStorage (shouldPersistHeaders) and sends it with every query; subscriptions get the same headers as their
// connection_init payload, which the server reads the token from.
(function () {
  "use strict";
  var url = window.location.origin + "/graphql";
  var socketUrl = url.replace(/^http/, "ws");

  var fetcher = GraphiQL.createFetcher({
    url: url,
    subscriptionUrl: socketUrl,
  });

  var example = [
    "# pipewright's GraphQL API. Put your API token under Headers first:",
    '#   {"Authorization": "Bearer <API token>"}',
    "# then run this query with Ctrl-Enter or the play button.",
    "{",
    "  me {",
    "    name",
    "    role",
    "  }",
    "}",
    "",
  ].join("\n");

  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: example,
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
      inputValueDeprecation: true,
    })
  );
})();
