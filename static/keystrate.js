/*
 * keystrate.js — the browser client of a keystrate server (docs/pages.md).
 *
 * Loaded by the document page (`/<doc>/`); it defines `window.webstrate`,
 * usable from the dev console with no setup:
 *
 *   webstrate.webstrateId        the page's document id (from the path)
 *   webstrate.clientId           this socket's id (set when `hello` arrives)
 *   webstrate.clients            live array of connected client ids (readers)
 *   webstrate.users              live {clientId: {username, provider} | null}
 *                                of those clients (null: anonymous)
 *   webstrate.connected          true while the socket is open and greeted
 *   webstrate.ready              Promise resolved by the first `hello`
 *   webstrate.user               {username, provider, userId, permissions (live),
 *                                 invites: {create, check, accept, get, remove}}
 *
 *   await webstrate.user.invites.create({permissions: "rw", maxAge: 300, maxUses: 1})
 *   await webstrate.user.invites.check(key)
 *   await webstrate.user.invites.accept(key)
 *   await webstrate.user.invites.get()              // my invites on this document
 *   await webstrate.user.invites.get({all: true})   // every invite (admins)
 *   await webstrate.user.invites.get("other-doc")   // mine on another document
 *   await webstrate.user.invites.remove(key)
 *
 * Every invites call takes an optional last argument `webstrateId` to target
 * another document on the same server. Extras beyond Webstrates', used by the
 * page's permissions panel:
 *
 *   await webstrate.permissionList.get(webstrateId?)
 *   await webstrate.permissionList.set({username, provider, permissions}, webstrateId?)
 *   await webstrate.request(wa, options, webstrateId?)   // any raw action
 *
 * Each call returns a Promise resolving with the server's reply, or
 * rejecting with an Error whose `message` is the server's error text and
 * whose `code` is its code. Two codes come from this client: "timeout" (no
 * reply within 10 s) and "disconnected" (the socket dropped while the
 * request was in flight; it may or may not have been applied).
 *
 * Calls made while the socket is not open are queued and sent once the
 * server has greeted us. After a drop the socket reconnects with
 * exponential backoff (with jitter, capped at 30 s); the new `hello`
 * refreshes clientId, clients and permissions.
 *
 * Presence: the socket asks for batched presence (`?presence=batched`), so
 * a document with thousands of readers costs each of them a few frames a
 * second; every client joining or leaving is still one event below.
 *
 * Events — webstrate.on(event, fn) / webstrate.off(event, fn):
 *   "permissionsChanged"  fn(permissions, frame)
 *   "clientJoin"          fn(clientId, user, frame)   one per client; frame is
 *   "clientPart"          fn(clientId, user, frame)   the `clients` frame naming it
 *   "ready"               fn(helloFrame)   after every hello (first and reconnects)
 *   "disconnected"        fn(closeEvent)
 */
(function () {
  'use strict';

  const REQUEST_TIMEOUT_MS = 10000;
  const BACKOFF_FIRST_MS = 500;
  const BACKOFF_CAP_MS = 30000;
  const EVENTS = ['permissionsChanged', 'clientJoin', 'clientPart', 'ready', 'disconnected'];

  const pageDoc = (function () {
    const m = /^\/([^/]+)\//.exec(location.pathname);
    return m ? decodeURIComponent(m[1]) : null;
  })();

  const listeners = new Map(EVENTS.map((e) => [e, new Set()]));
  const pending = new Map(); // token → {frame, resolve, reject, timer, sent}
  // Position of each client in webstrate.clients, so that a batch of
  // thousands of joins or parts costs no scan of the list per client.
  const listed = new Map();
  let socket = null;
  let greeted = false;
  let attempt = 0;
  let nextToken = 0;
  // A random prefix keeps tokens of different page loads apart in server logs.
  const tokenPrefix = Math.random().toString(36).slice(2, 8);

  let resolveReady;
  const ready = new Promise((resolve) => { resolveReady = resolve; });

  const user = {
    username: null,
    provider: null,
    userId: null,
    permissions: '',
    invites: {
      create: (options = {}, webstrateId) => request('createInvite', options, webstrateId),
      check: (key, webstrateId) => request('checkInvite', { key }, webstrateId),
      accept: (key, webstrateId) => request('acceptInvite', { key }, webstrateId),
      get: (optionsOrWebstrateId, webstrateId) => {
        // get("other-doc") is shorthand for get({}, "other-doc").
        if (typeof optionsOrWebstrateId === 'string') {
          return request('getInvites', {}, optionsOrWebstrateId);
        }
        return request('getInvites', optionsOrWebstrateId || {}, webstrateId);
      },
      remove: (key, webstrateId) => request('removeInvite', { key }, webstrateId),
    },
  };

  const webstrate = {
    webstrateId: pageDoc,
    clientId: null,
    clients: [],
    users: {},
    connected: false,
    ready,
    user,
    permissionList: {
      get: (webstrateId) => request('getPermissions', {}, webstrateId),
      set: (entry, webstrateId) => request('setPermissions', entry, webstrateId),
    },
    request,
    on(event, fn) {
      listenersOf(event).add(fn);
      return webstrate;
    },
    off(event, fn) {
      listenersOf(event).delete(fn);
      return webstrate;
    },
  };

  function listenersOf(event) {
    const set = listeners.get(event);
    if (!set) throw new Error('Unknown event "' + event + '"; known: ' + EVENTS.join(', '));
    return set;
  }

  function emit(event, ...args) {
    for (const fn of Array.from(listeners.get(event))) {
      // One faulty listener must not stop the others or the client itself.
      try { fn(...args); } catch (e) { setTimeout(() => { throw e; }); }
    }
  }

  function failure(message, code) {
    const e = new Error(message);
    e.code = code;
    return e;
  }

  /** Sends one action; `d` only when another document is targeted. */
  function request(wa, options, webstrateId) {
    return new Promise((resolve, reject) => {
      const token = tokenPrefix + '-' + (++nextToken);
      const frame = { wa, token, options: options || {} };
      if (webstrateId !== undefined && webstrateId !== null && webstrateId !== pageDoc) {
        frame.d = webstrateId;
      }
      const entry = { frame, resolve, reject, sent: false, timer: null };
      entry.timer = setTimeout(() => {
        pending.delete(token);
        reject(failure('No reply to ' + wa + ' within ' + REQUEST_TIMEOUT_MS / 1000 + ' s', 'timeout'));
      }, REQUEST_TIMEOUT_MS);
      pending.set(token, entry);
      if (greeted) send(entry);
    });
  }

  function send(entry) {
    entry.sent = true;
    socket.send(JSON.stringify(entry.frame));
  }

  function settle(token, fn) {
    const entry = pending.get(token);
    if (!entry) return; // timed out already
    pending.delete(token);
    clearTimeout(entry.timer);
    fn(entry);
  }

  function setClients(ids, users) {
    // Mutate in place so references held by page code stay live.
    webstrate.clients.splice(0, webstrate.clients.length, ...ids);
    listed.clear();
    ids.forEach((id, i) => listed.set(id, i));
    for (const id of Object.keys(webstrate.users)) delete webstrate.users[id];
    Object.assign(webstrate.users, users || {});
  }

  function onHello(msg) {
    const u = msg.user || { username: 'anonymous', provider: '' };
    user.username = u.username;
    user.provider = u.provider;
    user.userId = u.username + ':' + u.provider;
    user.permissions = msg.permissions;
    webstrate.clientId = msg.clientId;
    setClients(msg.clients || [], msg.users);
    greeted = true;
    webstrate.connected = true;
    attempt = 0;
    for (const entry of pending.values()) if (!entry.sent) send(entry);
    resolveReady(webstrate);
    emit('ready', msg);
  }

  function onPermissionsChanged(msg) {
    if (msg.d !== pageDoc) return;
    const couldRead = user.permissions.includes('r');
    user.permissions = msg.permissions;
    const canRead = msg.permissions.includes('r');
    // Presence is only told to readers: losing r makes the list unknowable,
    // gaining r brings a clientJoin for everyone already here.
    if (couldRead && !canRead) setClients([]);
    if (!couldRead && canRead) {
      const me = user.username === 'anonymous' ? null : { username: user.username, provider: user.provider };
      setClients([webstrate.clientId], { [webstrate.clientId]: me });
    }
    emit('permissionsChanged', msg.permissions, msg);
  }

  function onPresence(msg) {
    if (msg.wa === 'clientJoin') joined(msg.clientId, msg.user, msg);
    else parted(msg.clientId, msg.user, msg);
  }

  /** A `clients` frame (batched presence): parts first, then joins. */
  function onClients(msg) {
    if (msg.d !== pageDoc) return;
    for (const id of msg.parted || []) if (listed.has(id)) parted(id, webstrate.users[id], msg);
    for (const [id, u] of Object.entries(msg.joined || {})) {
      // Our own id comes back in the batch of our join: already listed.
      if (listed.has(id)) webstrate.users[id] = u;
      else joined(id, u, msg);
    }
  }

  function joined(id, u, msg) {
    if (!listed.has(id)) {
      listed.set(id, webstrate.clients.length);
      webstrate.clients.push(id);
    }
    webstrate.users[id] = u;
    emit('clientJoin', id, u, msg);
  }

  function parted(id, u, msg) {
    const i = listed.get(id);
    if (i !== undefined) {
      // Swap the last client into the gap: O(1), order is not meaningful.
      const last = webstrate.clients.pop();
      if (last !== id) {
        webstrate.clients[i] = last;
        listed.set(last, i);
      }
      listed.delete(id);
    }
    delete webstrate.users[id];
    emit('clientPart', id, u === undefined ? null : u, msg);
  }

  function onMessage(event) {
    let msg;
    try { msg = JSON.parse(event.data); } catch (e) { return; }
    switch (msg.wa) {
      case 'hello': return onHello(msg);
      case 'reply':
        return settle(msg.token, (entry) => {
          if ('error' in msg) entry.reject(failure(msg.error, msg.code));
          else entry.resolve(msg.reply);
        });
      case 'permissionsChanged': return onPermissionsChanged(msg);
      case 'clientJoin':
      case 'clientPart': return onPresence(msg);
      case 'clients': return onClients(msg);
      case 'error':
        // A frame we sent was unreadable: a bug in this file, so say so loudly.
        console.warn('keystrate: server rejected a frame:', msg.error);
        return undefined;
      default: return undefined;
    }
  }

  function onClose(event) {
    const wasGreeted = greeted;
    greeted = false;
    webstrate.connected = false;
    socket = null;
    // In-flight requests may or may not have been applied: the caller decides.
    for (const [token, entry] of Array.from(pending)) {
      if (entry.sent) {
        settle(token, (e) => e.reject(failure('Connection lost before ' + e.frame.wa + ' was answered', 'disconnected')));
      }
    }
    if (wasGreeted) emit('disconnected', event);
    scheduleReconnect();
  }

  function scheduleReconnect() {
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_FIRST_MS * 2 ** attempt);
    attempt += 1;
    // "Equal jitter": half fixed, half random, so many clients dropped by one
    // server restart do not all come back in the same instant.
    const delay = ceiling / 2 + Math.random() * ceiling / 2;
    setTimeout(connect, delay);
  }

  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const url = scheme + '//' + location.host + '/' + encodeURIComponent(pageDoc) + '/ws?presence=batched';
    socket = new WebSocket(url);
    socket.addEventListener('message', onMessage);
    socket.addEventListener('close', onClose);
  }

  window.webstrate = webstrate;
  if (pageDoc) connect();
})();
