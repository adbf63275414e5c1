/*
 * page.js — helpers shared by keystrate's own pages (not part of the
 * webstrate API): JSON HTTP calls that turn server errors into Errors, and
 * one way of showing a message so no error is ever swallowed.
 */
(function () {
  'use strict';

  /** Fetches `path`; resolves with the parsed JSON body (or null), rejects
   *  with an Error carrying the server's `error` text, `code` and `status`. */
  async function api(method, path, body) {
    const init = { method, credentials: 'same-origin', headers: {} };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (e) {
      throw Object.assign(new Error('Cannot reach the server: ' + e.message), { code: 'network' });
    }
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!response.ok) {
      const message = (data && data.error) || text || response.statusText;
      throw Object.assign(new Error(message), { code: data && data.code, status: response.status });
    }
    return data;
  }

  /** Shows `message` in `el` (a role=status/alert element); kind is
   *  "error" or "ok". An empty message hides the element. */
  function say(el, message, kind) {
    el.textContent = message || '';
    el.hidden = !message;
    el.classList.toggle('error', kind === 'error');
    el.classList.toggle('ok', kind === 'ok');
  }

  /** Shows an Error from `api` or `webstrate`, with its code when it has one. */
  function sayError(el, err) {
    say(el, err.code ? err.message + ' (' + err.code + ')' : err.message, 'error');
  }

  /** Creates an element: el('li', {className: 'x'}, 'text', child…). */
  function el(tag, props, ...children) {
    const node = Object.assign(document.createElement(tag), props || {});
    for (const c of children) node.append(c);
    return node;
  }

  /** Runs `fn()` now if the socket is greeted, then after every hello and
   *  permission change: the one hook panels need to follow the user's rights. */
  function whenever(fn) {
    window.webstrate.on('ready', () => fn());
    window.webstrate.on('permissionsChanged', () => fn());
    if (window.webstrate.connected) fn();
  }

  /** Copies `input`'s value; resolves true when copied, false when the
   *  text was only selected for a manual copy. The
   *  Clipboard API may be refused (permissions, insecure origin), so fall
   *  back to selecting the text for a manual copy. */
  async function copyFrom(input) {
    try {
      await navigator.clipboard.writeText(input.value);
      return true;
    } catch (e) {
      input.focus();
      input.select();
      return Boolean(document.execCommand && document.execCommand('copy'));
    }
  }

  window.keystratePage = { api, say, sayError, el, whenever, copyFrom };
})();
