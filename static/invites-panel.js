// The invites panel (admins only): create, list with countdown and use
// count, copy link, remove. Everything goes through webstrate.user.invites.
(function () {
  'use strict';
  const { say, sayError, el, whenever, copyFrom } = window.keystratePage;
  const ws = window.webstrate;
  const $ = (id) => document.getElementById(id);
  const section = $('invites');
  const message = $('invites-message');
  let ticker = null;

  function linkFor(invite) {
    return location.origin + '/' + encodeURIComponent(invite.webstrateId) + '/?acceptInvite=' + invite.key;
  }

  /** "2d 3h", "4m 05s": coarse when far, to the second when near. */
  function remaining(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
    if (d) return d + 'd ' + h + 'h';
    if (h) return h + 'h ' + m + 'm';
    return m + 'm ' + String(s % 60).padStart(2, '0') + 's';
  }

  function tick() {
    let expired = false;
    for (const node of section.querySelectorAll('[data-expires]')) {
      const left = Date.parse(node.dataset.expires) - Date.now();
      node.textContent = left > 0 ? 'expires in ' + remaining(left) : 'expired';
      expired = expired || left <= 0;
    }
    // The server deletes expired invites; reload so the list agrees.
    if (expired) refresh();
  }

  function row(invite) {
    const link = el('input', { value: linkFor(invite), readOnly: true, className: 'invite-link' });
    link.setAttribute('aria-label', 'Invite link granting ' + invite.permissions);
    const copy = el('button', { type: 'button', className: 'small copy' }, 'Copy link');
    copy.addEventListener('click', async () => {
      say(message, (await copyFrom(link)) ? 'Link copied.' : 'Link selected: press Ctrl+C (or long-press) to copy it.', 'ok');
    });
    const remove = el('button', { type: 'button', className: 'small danger remove' }, 'Remove');
    remove.setAttribute('aria-label', 'Remove invite granting ' + invite.permissions);
    remove.addEventListener('click', async () => {
      try {
        await ws.user.invites.remove(invite.key);
        say(message, 'Invite removed.', 'ok');
      } catch (e) { sayError(message, e); }
      refresh();
    });
    const uses = 'used ' + invite.uses + (invite.maxUses === null ? '' : ' / ' + invite.maxUses);
    const by = invite.createdBy.username === ws.user.username ? '' : ' · by ' + invite.createdBy.username;
    const item = el('li', {},
      el('div', {},
        el('span', { className: 'badge' }, invite.permissions), ' ',
        el('span', { className: 'countdown' }), ' · ',
        el('span', { className: 'uses' }, uses), by),
      el('div', { className: 'row' }, link, copy, remove));
    item.dataset.key = invite.key;
    item.querySelector('.countdown').dataset.expires = invite.expiresAt;
    return item;
  }

  async function refresh() {
    try {
      const invites = await ws.user.invites.get({ all: true });
      $('invite-list').replaceChildren(...invites.map(row));
      $('invites-empty').hidden = invites.length > 0;
      tick();
    } catch (e) { sayError(message, e); }
  }

  $('invite-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const options = {
      permissions: $('invite-permissions').value,
      maxAge: Number($('invite-max-age').value),
    };
    if ($('invite-max-uses').value !== '') options.maxUses = Number($('invite-max-uses').value);
    try {
      await ws.user.invites.create(options);
      say(message, 'Invite created.', 'ok');
    } catch (e) { sayError(message, e); }
    refresh();
  });

  whenever(() => {
    const admin = ws.user.permissions.includes('a');
    const wasHidden = section.hidden;
    section.hidden = !admin;
    if (admin && wasHidden) refresh();
    if (admin && !ticker) ticker = setInterval(tick, 1000);
    if (!admin && ticker) { clearInterval(ticker); ticker = null; }
  });
})();
