// The login / register page: both forms post JSON, then go to `?next=`.
(function () {
  'use strict';
  const { api, say, sayError } = window.keystratePage;

  /** `?next=` only when it is a path on this site: it must start with one
   *  `/` (not `//` or `/\`, which browsers read as another host). */
  function nextPath() {
    const next = new URLSearchParams(location.search).get('next');
    if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return null;
    if (/[\u0000-\u001f]/.test(next)) return null;
    const url = new URL(next, location.origin);
    return url.origin === location.origin ? url.pathname + url.search + url.hash : null;
  }

  const next = nextPath();
  if (next) {
    // An invite link is the common way here: say so in words, not as a URL.
    const url = new URL(next, location.origin);
    const inviteTo = url.searchParams.has('acceptInvite') && /^\/([^/]+)\/$/.exec(url.pathname);
    document.getElementById('next-lead').textContent = inviteTo
      ? 'Log in or register to accept your invitation to '
      : 'Log in to continue to ';
    document.getElementById('next-path').textContent = inviteTo ? decodeURIComponent(inviteTo[1]) : next;
    document.getElementById('next-note').hidden = false;
  }

  function wire(form, path) {
    const message = form.querySelector('.message');
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      say(message, '');
      const data = new FormData(form);
      const button = form.querySelector('button');
      button.disabled = true;
      try {
        await api('POST', path, { username: data.get('username'), password: data.get('password') });
        location.assign(next || '/');
      } catch (e) {
        sayError(message, e);
        button.disabled = false;
      }
    });
  }

  wire(document.getElementById('login'), '/auth/login');
  wire(document.getElementById('register'), '/auth/register');
})();
