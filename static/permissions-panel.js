// The permissions panel (admins only): every entry of the document's list,
// changed or removed in place, plus the anonymous ("anyone") entry.
(function () {
  'use strict';
  const { say, sayError, el, whenever } = window.keystratePage;
  const ws = window.webstrate;
  const $ = (id) => document.getElementById(id);
  const section = $('permissions');
  const message = $('permissions-message');
  const USER_LEVELS = ['r', 'rw', 'arw'];
  // The anonymous entry can never hold `a` (docs/protocol.md, "Permissions").
  const ANONYMOUS_LEVELS = [['', 'no access'], ['r', 'r'], ['rw', 'rw']];

  async function set(entry) {
    try {
      await ws.permissionList.set(entry);
      say(message, 'Saved.', 'ok');
    } catch (e) { sayError(message, e); }
    refresh();
  }

  function select(label, options, value, onChange) {
    const node = el('select', {}, ...options.map(([v, text]) => el('option', { value: v, selected: v === value }, text)));
    node.setAttribute('aria-label', label);
    node.addEventListener('change', () => onChange(node.value));
    return node;
  }

  function userRow(entry) {
    const name = entry.username + (entry.provider === 'local' ? '' : ' (' + entry.provider + ')');
    const me = entry.username === ws.user.username && entry.provider === ws.user.provider;
    const level = select('Permission of ' + name, USER_LEVELS.map((l) => [l, l]), entry.permissions,
      (permissions) => set({ username: entry.username, provider: entry.provider, permissions }));
    const remove = el('button', { type: 'button', className: 'small danger' }, 'Remove');
    remove.setAttribute('aria-label', 'Remove ' + name);
    remove.addEventListener('click', () => set({ username: entry.username, provider: entry.provider, permissions: '' }));
    const item = el('li', { className: 'row' }, el('span', { className: 'grow' }, name, me ? ' (you)' : ''), level, remove);
    item.dataset.user = entry.username + ':' + entry.provider;
    return item;
  }

  function anonymousRow(entry) {
    const level = select('Permission of anyone not listed (anonymous)', ANONYMOUS_LEVELS, entry ? entry.permissions : '',
      (permissions) => set({ username: 'anonymous', provider: '', permissions }));
    const item = el('li', { className: 'row' }, el('span', { className: 'grow' }, 'Anyone else, even logged out (anonymous)'), level);
    item.dataset.user = 'anonymous:';
    return item;
  }

  async function refresh() {
    try {
      const entries = await ws.permissionList.get();
      const anonymous = entries.find((e) => e.username === 'anonymous' && e.provider === '');
      const users = entries.filter((e) => e !== anonymous);
      $('permission-list').replaceChildren(...users.map(userRow), anonymousRow(anonymous));
    } catch (e) { sayError(message, e); }
  }

  $('permission-form').addEventListener('submit', (event) => {
    event.preventDefault();
    set({ username: $('permission-username').value.trim(), provider: 'local', permissions: $('permission-level').value });
    $('permission-username').value = '';
  });

  whenever(() => {
    const admin = ws.user.permissions.includes('a');
    const wasHidden = section.hidden;
    section.hidden = !admin;
    if (admin && wasHidden) refresh();
  });
})();
