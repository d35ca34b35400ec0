// favsync.js — the browser side of favsync: hearts in localStorage that follow the
// visitor to every device once they sign in by email. No dependencies.
//
//   import { createFavSync } from "/api/v1/favorites/client.js";
//   const favsync = createFavSync({ api: "/api/v1/favorites" });
//   favsync.start();                       // silent sign-in with the refresh cookie, then sync
//   favsync.toggle("C9231328");            // heart / un-heart, synced when signed in
//   favsync.onChange((ids) => render(ids));
//
// The auth token lives in memory only; the refresh cookie (HttpOnly) renews it.

const KEY = "favsync:";
const REFRESH_SKEW_SECONDS = 30;
const MESSAGES = {
  token_used: "This sign-in link was used in another browser; sign in again here.",
  code_used: "This code was already used to sign in, perhaps in another browser; request a new one here.",
  token_expired: "This sign-in link has expired; request a new one.",
  too_many_attempts: "Too many wrong codes; request a new sign-in email.",
  invalid_token: "This sign-in link is not valid; request a new one.",
  invalid_code: "That code is not right; check the email and try again.",
};

class FavSyncError extends Error {
  constructor(status, code, message, retryAfter) {
    super(MESSAGES[code] || message || `favsync answered ${status}`);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

function uuid4() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function tokenExpiry(token) {
  try {
    const payload = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return payload.exp || 0;
  } catch {
    return 0;
  }
}

export function createFavSync(options = {}) {
  const api = (options.api || "/api/v1/favorites").replace(/\/$/, "");
  const store = options.storage || window.localStorage;
  const channel = "BroadcastChannel" in window ? new BroadcastChannel(`${KEY}${api}`) : null;
  const listeners = new Set();
  let authToken = null;
  let refreshing = null; // one refresh in flight per page, however many requests got 401
  let syncing = null;
  let blockedUntil = 0; // a 429's Retry-After, honoured for every request
  let retryTimer = null;
  let switchedTo = null; // the account a refresh found instead of the one signed in

  const read = (name, fallback) => {
    const raw = store.getItem(KEY + name);
    return raw === null ? fallback : JSON.parse(raw);
  };
  const write = (name, value) =>
    value === undefined || value === null ? store.removeItem(KEY + name) : store.setItem(KEY + name, JSON.stringify(value));

  function sessionId() {
    let id = read("session", null);
    if (!id) write("session", (id = uuid4()));
    return id;
  }

  function emit() {
    const ids = list();
    for (const listener of listeners) listener(ids);
  }

  function setList(ids, { broadcast = true } = {}) {
    write("favorites", [...new Set(ids)]);
    emit();
    if (broadcast && channel) channel.postMessage({ type: "changed" });
  }

  // Another tab changed the hearts or the sign-in: show it here too.
  window.addEventListener("storage", (event) => {
    if (event.key && event.key.startsWith(KEY)) emit();
  });
  if (channel) channel.onmessage = (event) => {
    if (event.data.type === "changed") emit();
    if (event.data.type === "signed-out") authToken = null;
  };
  window.addEventListener("online", () => sync());

  async function request(method, path, { body, auth = false, retried = false } = {}) {
    const wait = blockedUntil - Date.now();
    if (wait > 0) throw new FavSyncError(429, "rate_limited", `Try again in ${Math.ceil(wait / 1000)} s.`, Math.ceil(wait / 1000));
    const headers = { "X-Session-ID": sessionId() };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (auth) {
      const token = await currentToken();
      if (!token) throw new FavSyncError(401, "unauthorized", "Not signed in.");
      headers.Authorization = `Bearer ${token}`;
    }
    const response = await fetch(api + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "include", // the refresh cookie, on every login call too
    });
    if (response.status === 401 && auth && !retried) {
      authToken = null;
      if (await refresh()) return request(method, path, { body, auth, retried: true });
    }
    const answer = response.status === 204 ? {} : await response.json().catch(() => ({}));
    if (!response.ok) {
      const retryAfter = Number(response.headers.get("Retry-After")) || 0;
      if (response.status === 429 && retryAfter) blockedUntil = Date.now() + retryAfter * 1000;
      if (response.status === 401 && auth) signedOut();
      const error = answer.error || {};
      throw new FavSyncError(response.status, error.code, error.message, retryAfter);
    }
    return answer;
  }

  async function currentToken() {
    if (authToken && tokenExpiry(authToken) - REFRESH_SKEW_SECONDS > Date.now() / 1000) return authToken;
    return (await refresh()) ? authToken : null;
  }

  function refresh() {
    if (!refreshing) {
      refreshing = fetch(`${api}/token/refresh`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Session-ID": sessionId() },
        body: "{}",
        credentials: "include",
      })
        .then(async (response) => {
          if (!response.ok) {
            if (response.status === 401) signedOut();
            return false;
          }
          const answer = await response.json();
          authToken = answer.auth_token;
          const previous = read("email", null);
          // Another account's cookie: someone made this browser open their sign-in
          // link (login CSRF). Nothing of this browser's goes to it without asking.
          if (previous !== null && previous !== answer.email) switchedTo = answer.email;
          write("email", answer.email);
          return true;
        })
        .catch(() => false)
        .finally(() => (refreshing = null));
    }
    return refreshing;
  }

  function signedOut() {
    authToken = null;
    if (read("email", null) !== null) {
      write("email", null);
      write("base", null);
      if (channel) channel.postMessage({ type: "signed-out" });
      emit();
    }
  }

  // -- hearts -------------------------------------------------------------------

  function list() {
    return read("favorites", []);
  }

  function has(id) {
    return list().includes(id);
  }

  function toggle(id) {
    const ids = list();
    const removed = new Set(read("removed", []));
    if (ids.includes(id)) {
      removed.add(id);
      setList(ids.filter((other) => other !== id));
    } else {
      removed.delete(id);
      setList([...ids, id]);
    }
    write("removed", [...removed]);
    write("dirty", true); // synced when signed in and online; kept until then
    sync().catch((error) => console.warn("favsync: sync failed", error));
    return has(id);
  }

  function onChange(callback) {
    listeners.add(callback);
    return () => listeners.delete(callback);
  }

  // -- sync -----------------------------------------------------------------------

  function sync() {
    if (!read("email", null) && !authToken) return Promise.resolve(list());
    if (syncing) {
      // A change while a sync is in flight: send it once that one has answered.
      return (syncing = syncing.then(() => sync()));
    }
    syncing = doSync().finally(() => (syncing = null));
    return syncing;
  }

  async function doSync() {
    if (switchedTo) {
      const who = switchedTo;
      switchedTo = null;
      const local = list();
      if (local.length && !window.confirm(`Sign in as ${who} and add this browser's ${local.length} favourites?`)) {
        const answer = await request("GET", "", { auth: true });
        write("removed", []);
        write("dirty", false);
        write("base", { email: who, version: answer.version });
        setList(answer.favorites);
        return answer.favorites;
      }
    }
    const base = read("base", null);
    const sent = list();
    const body = { favorites: sent, removed: read("removed", []) };
    if (base && base.email === read("email", null)) body.base_version = base.version;
    try {
      const answer = await request("POST", "/sync", { body, auth: true });
      const now = list();
      const hearted = now.filter((id) => !sent.includes(id));
      const dropped = sent.filter((id) => !now.includes(id));
      if (hearted.length || dropped.length) {
        // Changed here while the answer was on its way: keep those changes on
        // top of the answer, and send them from its version next.
        write("base", { email: read("email", null), version: answer.version });
        write("removed", dropped);
        setList([...answer.favorites.filter((id) => !dropped.includes(id)), ...hearted]);
        setTimeout(() => sync(), 0); // once this sync has finished
        return list();
      }
      adopt(answer);
      return answer.favorites;
    } catch (error) {
      if (error.status === 429 && error.retryAfter) {
        clearTimeout(retryTimer);
        retryTimer = setTimeout(sync, error.retryAfter * 1000);
      }
      // Offline or rate-limited: the changes stay queued for later. 401: signed out
      // (logged out everywhere, or the session ended); the hearts stay in this browser.
      if (error.status === undefined || error.status === 429 || error.status === 401) return list();
      throw error;
    }
  }

  function adopt(answer) {
    write("removed", []);
    write("dirty", false);
    if (answer.version !== undefined) write("base", { email: read("email", null), version: answer.version });
    setList(answer.favorites);
  }

  // -- signing in -------------------------------------------------------------------

  async function requestLink(email, { next } = {}) {
    const body = { email };
    if (next) body.next = next;
    return request("POST", "/magic-link", { body });
  }

  async function signedIn(answer, { confirmMerge } = {}) {
    authToken = answer.auth_token;
    const previous = read("base", null);
    if (!previous || previous.email !== answer.email) write("base", null);
    write("email", answer.email);
    const local = list();
    // Login CSRF: a link requested from another browser may be someone else's
    // account. Ask before this browser's hearts go into it.
    let upload = local.length > 0;
    if (upload && answer.same_browser === false) {
      const ask = confirmMerge || ((email, count) =>
        window.confirm(`Sign in as ${email} and add this browser's ${count} favourites?`));
      upload = await ask(answer.email, local.length);
    }
    if (upload) {
      await sync();
    } else {
      write("removed", []);
      write("dirty", false);
      write("base", answer.version === undefined ? null : { email: answer.email, version: answer.version });
      setList(answer.favorites);
    }
    if (channel) channel.postMessage({ type: "changed" });
    return { email: answer.email, clientId: answer.client_id, redirect: answer.redirect || null };
  }

  // The landing page for the emailed link: read ?token= and take it out of the
  // address bar at once; sign in only when the person clicks (a mail scanner
  // that runs the page's JavaScript does not click).
  function verifyFromUrl() {
    const url = new URL(window.location.href);
    const token = url.searchParams.get("token");
    if (!token) return null;
    url.searchParams.delete("token");
    window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
    return {
      signIn: async (opts = {}) => signedIn(await request("POST", "/verify", { body: { token } }), opts),
    };
  }

  async function verifyCode(email, code, opts = {}) {
    return signedIn(await request("POST", "/verify-code", { body: { email, code } }), opts);
  }

  async function logout({ all = false } = {}) {
    const token = all ? await currentToken() : null;
    const headers = { "Content-Type": "application/json", "X-Session-ID": sessionId() };
    if (token) headers.Authorization = `Bearer ${token}`;
    await fetch(`${api}/logout`, { method: "POST", headers, body: JSON.stringify({ all }), credentials: "include" })
      .catch(() => null);
    signedOut();
    write("removed", []);
    write("dirty", false);
    setList([]); // a shared computer keeps nobody's hearts
  }

  async function start() {
    if (read("email", null) && (await refresh())) await sync();
    emit();
  }

  function email() {
    return read("email", null);
  }

  // <favsync-heart listing="C9231328">: a real button, keyboard operable, aria-pressed.
  function defineHeartElement(name = "favsync-heart") {
    if (customElements.get(name)) return;
    const client = api_;
    customElements.define(name, class extends HTMLElement {
      connectedCallback() {
        if (!this.button) {
          this.button = document.createElement("button");
          this.button.type = "button";
          this.button.className = "favsync-heart";
          this.button.addEventListener("click", () => client.toggle(this.getAttribute("listing")));
          this.appendChild(this.button);
        }
        this.unsubscribe = client.onChange(() => this.render());
        this.render();
      }
      disconnectedCallback() {
        if (this.unsubscribe) this.unsubscribe();
      }
      render() {
        const on = client.has(this.getAttribute("listing"));
        this.button.setAttribute("aria-pressed", String(on));
        this.button.setAttribute("aria-label", `${on ? "Remove" : "Save"} listing ${this.getAttribute("listing")}`);
        this.button.textContent = on ? "♥" : "♡";
      }
    });
  }

  const api_ = {
    toggle, has, list, onChange, requestLink, verifyFromUrl, verifyCode, sync, logout, start,
    email, sessionId, defineHeartElement, FavSyncError,
  };
  return api_;
}
