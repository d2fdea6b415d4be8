// GraphiQL for the DVC pipelines service (app/graphiql.py puts it in the page at GET /graphql).
// Subscriptions go over graphql-ws with the Headers tab's Authorization sent in connection_init: browsers cannot
// set headers on a WebSocket handshake.
const parameters = new URLSearchParams(window.location.search);
const url = window.location.origin + window.location.pathname;
const subscriptionUrl = url.replace(/^http/, "ws");
const httpFetcher = GraphiQL.createFetcher({ url });

// One WebSocket client per Authorization value: a changed token opens a new connection.
const wsClients = new Map();
function wsClient(authorization) {
  const key = authorization || "";
  if (!wsClients.has(key)) {
    wsClients.set(key, graphqlWs.createClient({
      url: subscriptionUrl,
      connectionParams: authorization ? { Authorization: authorization } : {},
    }));
  }
  return wsClients.get(key);
}

function header(headers, name) {
  for (const [key, value] of Object.entries(headers || {})) {
    if (key.toLowerCase() === name) return String(value);
  }
  return undefined;
}

// From the query text itself: GraphiQL's parsed document lags behind the editor (it is parsed on a
// debounce), so a subscription run right after typing would go over HTTP.
function isSubscription(params) {
  let text = (params.query || "")
    .replace(/"""[\s\S]*?"""|"(?:[^"\\\n]|\\.)*"/g, '""')
    .replace(/#[^\n\r]*/g, "");
  // Drop every selection set and argument list, innermost first: only top-level definitions remain.
  for (let before = null; before !== text; ) {
    before = text;
    text = text.replace(/\{[^{}]*\}/g, " ").replace(/\([^()]*\)/g, " ");
  }
  const operations = [...text.matchAll(/(?:^|\s)(query|mutation|subscription)(?:\s+([_A-Za-z][_0-9A-Za-z]*))?/g)];
  const chosen = params.operationName
    ? operations.find((match) => match[2] === params.operationName)
    : operations[0];
  return Boolean(chosen && chosen[1] === "subscription");
}

function readable(error) {
  if (error instanceof Error) return error;
  if (error && typeof error.code === "number") {
    return new Error(`the WebSocket closed (${error.code}${error.reason ? ": " + error.reason : ""})`);
  }
  if (Array.isArray(error)) return new Error(error.map((e) => e.message).join("; "));
  return new Error(String(error));
}

function fetcher(params, options) {
  if (!isSubscription(params)) {
    return httpFetcher(params, options);
  }
  const client = wsClient(header(options && options.headers, "authorization"));
  return {
    subscribe(observer) {
      const dispose = client.subscribe(params, {
        next: (value) => observer.next && observer.next(value),
        error: (error) => observer.error && observer.error(readable(error)),
        complete: () => observer.complete && observer.complete(),
      });
      return { unsubscribe: dispose };
    },
  };
}

const root = ReactDOM.createRoot(document.getElementById("graphiql"));
root.render(React.createElement(GraphiQL, {
  fetcher,
  defaultQuery: window.GRAPHIQL_DEFAULT_QUERY,
  query: parameters.get("q") || undefined,
  variables: parameters.get("variables") || undefined,
  headers: parameters.get("headers") || undefined,
  defaultHeaders: '{"Authorization": "Bearer "}',
  defaultEditorToolsVisibility: "headers",
  isHeadersEditorEnabled: true,
  shouldPersistHeaders: true,
  inputValueDeprecation: true,
}));
