// static/keystrate.js run under Node as a document page would run it, for
// tests/it/rooms.rs: Node's own WebSocket (a real client; on Node 20 behind
// --experimental-websocket) against the live server at KEYSTRATE_PAGE; only
// `window` and `location` are stood in for.
//
// Prints {"ready": clientId} once greeted. Then, for each line read on
// stdin ({"count": n}), waits (up to 10 s) until webstrate.clients holds n
// clients and prints what the page code saw: the list, the users, every
// clientJoin/clientPart event with the kind of frame that carried it, the
// kinds of all frames received and the socket URLs opened.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');
const vm = require('node:vm');

globalThis.window = globalThis;
globalThis.location = new URL(process.env.KEYSTRATE_PAGE);

const opened = [];
const frameKinds = {};
const Native = globalThis.WebSocket;
if (typeof Native !== 'function') throw new Error('this Node has no WebSocket');
globalThis.WebSocket = class extends Native {
  constructor(url, ...rest) {
    super(url, ...rest);
    opened.push(String(url));
    // Registered before keystrate.js's own listener: counts every frame.
    this.addEventListener('message', (e) => {
      const wa = JSON.parse(e.data).wa;
      frameKinds[wa] = (frameKinds[wa] || 0) + 1;
    });
  }
};

const client = path.join(__dirname, '..', '..', '..', 'static', 'keystrate.js');
vm.runInThisContext(fs.readFileSync(client, 'utf8'), { filename: client });
const ws = globalThis.webstrate;

const events = [];
ws.on('clientJoin', (id, user, frame) => events.push({ event: 'clientJoin', id, user, frame: frame.wa }));
ws.on('clientPart', (id, user, frame) => events.push({ event: 'clientPart', id, user, frame: frame.wa }));
ws.ready.then(() => console.log(JSON.stringify({ ready: ws.clientId })));

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const input = readline.createInterface({ input: process.stdin });
input.on('line', async (line) => {
  const { count } = JSON.parse(line);
  const deadline = Date.now() + 10000;
  while (ws.clients.length !== count && Date.now() < deadline) await sleep(20);
  console.log(JSON.stringify({ clients: ws.clients, users: ws.users, events, frameKinds, opened }));
});
input.on('close', () => process.exit(0));
