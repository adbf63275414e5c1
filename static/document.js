// The document page's always-visible parts: who and what I am here, the
// connection state and the connected clients, all following the socket live.
(function () {
  'use strict';
  const { el, whenever } = window.keystratePage;
  const ws = window.webstrate;
  const $ = (id) => document.getElementById(id);
  const MEANING = {
    '': 'no access yet (you can still accept invites)',
    r: 'read',
    rw: 'read and write',
    arw: 'admin: read, write, invite and manage permissions',
  };

  $('doc-id').textContent = ws.webstrateId;
  document.title = ws.webstrateId + ' — keystrate';

  function showPermission() {
    const p = ws.user.permissions;
    $('my-permission').textContent = p || 'none';
    $('permission-meaning').textContent = MEANING[p] || '';
    if (ws.user.username === 'anonymous') {
      const next = encodeURIComponent(location.pathname);
      $('who').replaceChildren('Not logged in · ', el('a', { href: '/auth/login?next=' + next }, 'Log in'));
    } else {
      $('who').textContent = 'Logged in as ' + ws.user.username;
    }
  }

  function describe(id) {
    if (id === ws.clientId) return 'you (' + ws.user.username + ')';
    const u = ws.users[id];
    if (!u) return id in ws.users ? 'anonymous visitor' : 'another reader';
    return u.username + (u.provider && u.provider !== 'local' ? ' (' + u.provider + ')' : '');
  }

  function showClients() {
    const canRead = ws.user.permissions.includes('r');
    $('clients').replaceChildren(...(canRead
      ? [ws.clientId, ...ws.clients.filter((id) => id !== ws.clientId)].map((id) => el('li', {}, describe(id), ' ', el('code', { className: 'muted' }, id)))
      : [el('li', { className: 'muted' }, 'Only readers see who is here.')]));
    $('client-count').textContent = String(ws.clients.length);
  }

  function setConnection(text, ok) {
    $('connection').textContent = text;
    $('connection').classList.toggle('ok', ok);
  }

  // One frame can bring hundreds of joins (batched presence): draw the list
  // once after them, not once per client.
  let redraw = false;
  function showClientsSoon() {
    if (redraw) return;
    redraw = true;
    queueMicrotask(() => { redraw = false; showClients(); });
  }
  ws.on('clientJoin', showClientsSoon);
  ws.on('clientPart', showClientsSoon);
  ws.on('ready', () => {
    setConnection('connected', true);
    showClients();
  });
  ws.on('disconnected', () => setConnection('reconnecting…', false));
  whenever(() => { showPermission(); showClients(); });
  if (ws.connected) setConnection('connected', true);

  // Each console snippet gets a copy button next to it.
  for (const item of $('snippets').children) {
    const code = item.querySelector('code');
    const hidden = el('input', { value: code.textContent, readOnly: true, className: 'visually-hidden', tabIndex: -1 });
    hidden.setAttribute('aria-hidden', 'true');
    const button = el('button', { type: 'button', className: 'small secondary' }, 'Copy');
    button.setAttribute('aria-label', 'Copy ' + code.textContent);
    button.addEventListener('click', async () => {
      button.textContent = (await window.keystratePage.copyFrom(hidden)) ? 'Copied' : 'Press Ctrl+C';
    });
    item.append(' ', button, hidden);
  }
})();
