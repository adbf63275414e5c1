// The landing page: who am I, my documents, new document, log out.
(function () {
  'use strict';
  const { api, say, sayError, el } = window.keystratePage;
  const $ = (id) => document.getElementById(id);
  const message = $('message');

  function showDocuments(docs) {
    const list = $('docs');
    list.replaceChildren(...docs.map((d) => el('li', {},
      el('a', { href: '/' + encodeURIComponent(d.id) + '/' }, d.id),
      ' ',
      el('span', { className: 'badge', title: 'your permission' }, d.permissions || 'none'))));
    $('empty').hidden = docs.length > 0;
  }

  async function loggedIn(me) {
    $('who').textContent = 'Logged in as ' + me.username;
    $('logout').hidden = false;
    $('mine').hidden = false;
    $('account').hidden = false;
    $('username-hint').value = me.username;
    showDocuments(await api('GET', '/api/documents'));
  }

  async function start() {
    let me;
    try {
      me = await api('GET', '/auth/me');
    } catch (e) {
      if (e.status === 401) { $('anonymous').hidden = false; return; }
      throw e;
    }
    await loggedIn(me);
  }

  $('logout').addEventListener('click', async () => {
    try {
      await api('POST', '/auth/logout');
      location.reload();
    } catch (e) { sayError(message, e); }
  });

  $('named-doc').addEventListener('submit', async (event) => {
    event.preventDefault();
    const id = $('doc-id').value.trim();
    try {
      await api('POST', '/api/documents', { id });
      location.href = '/' + encodeURIComponent(id) + '/';
    } catch (e) { sayError(message, e); }
  });

  $('password-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      await api('POST', '/auth/password', {
        password: $('current-password').value,
        newPassword: $('new-password').value,
      });
      event.target.reset();
      say(message, 'Password changed. Your other sessions were logged out.', 'ok');
    } catch (e) { sayError(message, e); }
  });

  start().catch((e) => sayError(message, e));
})();
