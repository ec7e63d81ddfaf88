// Where the chat's AppSync Events API lives, and how it is authorised: the ONE place to
// change to talk to a real AWS AppSync Events API instead of this Django server.
//
// Here: same origin, `/event/realtime` over WebSocket and `/event` over HTTP, authorised by
// the Django session cookie (the browser sends it) and, for HTTP, the CSRF token.
// For AppSync: set `realtimeUrl` to wss://<realtime domain>/event/realtime, `httpUrl` to
// https://<http domain>/event, and make `authorization()` return the headers AppSync wants
// (e.g. {host: "<http domain>", Authorization: "<Cognito id token>"}); the client sends them
// base64url-encoded in the `header-…` subprotocol and in every subscribe/publish frame.

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export function localEndpoint() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return {
    realtimeUrl: `${scheme}//${location.host}/event/realtime`,
    httpUrl: "/event",
    authorization: () => ({ host: location.host }),
    httpHeaders: () => ({ "X-CSRFToken": csrfToken() }),
  };
}

export function base64Url(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  bytes.forEach((b) => { binary += String.fromCharCode(b); });
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
