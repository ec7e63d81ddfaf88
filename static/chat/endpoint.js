// Where the chat's AppSync Events API lives, and how it is authorised: the ONE place that
// says where the page connects. The server picks the transport (GATEWAY_CHAT_TRANSPORT).
//
// local: same origin, `/event/realtime` over WebSocket, authorised by the Django session
// cookie (the browser sends it).
// appsync: the deployed AppSync Events API, authorised by the user's Cognito ID token, which
// Django keeps fresh and hands out at `tokenUrl`; the client sends {host, Authorization}
// base64url-encoded in the `header-…` subprotocol and in every subscribe/publish frame.

export function localEndpoint() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return {
    realtimeUrl: `${scheme}//${location.host}/event/realtime`,
    authorization: () => ({ host: location.host }),
    // Django closes with these when the session ended or the client misbehaved.
    noReconnectCodes: [4401, 4429],
  };
}

export function appsyncEndpoint(config, tokens) {
  const httpHost = new URL(config.httpUrl).host;
  return {
    realtimeUrl: config.realtimeUrl,
    // Before each connection: a token with time left (fetched from Django when needed).
    prepare: () => tokens.fresh(),
    authorization: () => ({ host: httpHost, Authorization: tokens.current() }),
    // AppSync ends connections whose token lapsed: always reconnect, with a fresh token;
    // `prepare` refusing (sign-in required) is what stops the client.
    noReconnectCodes: [],
  };
}

// The user's Cognito ID token, as Django hands it out: kept in memory only, renewed a little
// before it expires (onRenewed tells the page, which reconnects with it when idle).
export class IdTokenSource {
  constructor(url, { onRenewed = () => {} } = {}) {
    this.url = url;
    this.onRenewed = onRenewed;
    this.token = "";
    this.expiresAt = 0; // epoch seconds
    this.renewTimer = null;
  }

  current() { return this.token; }

  secondsLeft() { return this.expiresAt - Date.now() / 1000; }

  async fresh() {
    if (this.token && this.secondsLeft() > 5) return this.token;
    await this.fetch();
    return this.token;
  }

  async fetch() {
    let response;
    try {
      response = await fetch(this.url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } });
    } catch {
      throw tokenError("The sign-in service cannot be reached. Retrying…", false);
    }
    let body = {};
    try { body = await response.json(); } catch { /* a proxy's HTML error page */ }
    if (!response.ok) {
      const first = (body.errors || [])[0] || {};
      // 401: the Django session ended; 403: no Cognito identity or sign-in expired; 503: retry.
      const permanent = response.status === 401 || response.status === 403;
      throw tokenError(first.message || "Could not get a sign-in token.", permanent);
    }
    this.token = body.idToken;
    this.expiresAt = body.expiresAt;
    this.scheduleRenewal();
    return this.token;
  }

  scheduleRenewal() {
    clearTimeout(this.renewTimer);
    const left = this.secondsLeft();
    // Renew a quarter of the lifetime (at most a minute) before expiry.
    const lead = Math.min(60, left / 4);
    this.renewTimer = setTimeout(() => this.renew(), Math.max(1000, (left - lead) * 1000));
  }

  async renew() {
    try {
      await this.fetch();
      this.onRenewed();
    } catch (error) {
      if (!error.permanent) this.renewTimer = setTimeout(() => this.renew(), 5000);
    }
  }
}

function tokenError(message, permanent) {
  return Object.assign(new Error(message), { permanent, errorType: "Unauthorized" });
}

export function base64Url(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  bytes.forEach((b) => { binary += String.fromCharCode(b); });
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
