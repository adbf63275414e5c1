// Drives the official client libraries against a running keystrate server,
// with only the base URL changed. Run by tests/it/clients.rs, which starts the
// server and prepares the credentials:
//   KEYSTRATE_URL         base URL (also the server's public URL: the `aud`)
//   KEYSTRATE_APP         a document the account below is admin of
//   KEYSTRATE_KEY_ID      an account key id (act_…) of that admin
//   KEYSTRATE_KEY_SECRET  its secret
// Prints one `ok <flow>` line per flow; any failure exits non-zero.
"use strict";

const assert = require("node:assert/strict");
const jsonwebtoken = require("jsonwebtoken");

const base = required("KEYSTRATE_URL");
const appId = required("KEYSTRATE_APP");
const keyId = required("KEYSTRATE_KEY_ID");
const secret = required("KEYSTRATE_KEY_SECRET");

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

// ---- smooch-core: app keys with an account key ---------------------------

async function smoochAppKeys(label, Smooch) {
  const smooch = new Smooch({ keyId, secret, scope: "account", serviceUrl: base });

  const created = await smooch.apps.keys.create(appId, `${label} key`);
  const key = created.key;
  assert.match(key._id, /^app_[0-9a-f]{24}$/);
  assert.equal(key.name, `${label} key`);
  assert.equal(typeof key.secret, "string");

  const listed = await smooch.apps.keys.list(appId);
  assert.ok(listed.keys.some((k) => k._id === key._id), "list has the new key");

  const fetched = await smooch.apps.keys.get(appId, key._id);
  assert.deepEqual(fetched.key, key);

  const { jwt } = await smooch.apps.keys.getJwt(appId, key._id);
  const header = JSON.parse(Buffer.from(jwt.split(".")[0], "base64url"));
  assert.deepEqual(header, { alg: "HS256", typ: "JWT", kid: key._id });
  assert.equal(jsonwebtoken.verify(jwt, key.secret, { algorithms: ["HS256"] }).scope, "app");
  // The JWT is an app credential for this document.
  const invite = await fetch(`${base}/invites_api`, {
    method: "POST",
    headers: { authorization: `Bearer ${jwt}` },
  });
  assert.equal(invite.status, 201, `app JWT makes an invite: ${await invite.text()}`);

  await smooch.apps.keys.delete(appId, key._id);
  const error = await smooch.apps.keys.get(appId, key._id).then(
    () => assert.fail("a deleted key is gone"),
    (e) => e,
  );
  assert.equal(error.code, "not_found");
  assert.ok(error.description.includes(key._id), error.description);
  assert.equal(error.response.status, 404);
  console.log(`ok ${label} app keys: create, list, get, getJwt, delete, errors`);
}

// ---- @walletconnect/identity-keys ------------------------------------------

/** In-memory key-value storage for the WalletConnect core (no files). */
function memoryStorage() {
  const items = new Map();
  return {
    getKeys: async () => [...items.keys()],
    getEntries: async () => [...items.entries()],
    getItem: async (k) => items.get(k),
    setItem: async (k, v) => void items.set(k, v),
    removeItem: async (k) => void items.delete(k),
  };
}

async function identityKeys() {
  const { Core } = require("@walletconnect/core");
  const { IdentityKeys } = require("@walletconnect/identity-keys");
  const didJwt = require("@walletconnect/did-jwt");
  const { formatMessage } = require("@walletconnect/utils");
  const { Wallet } = require("ethers");

  const core = new Core({ projectId: "keystrate-test", storage: memoryStorage(), logger: "silent" });
  await core.crypto.init();
  const keys = new IdentityKeys(core, "keystrate-test", base);
  await keys.init();

  // Plain registration, as wallets do.
  const wallet = Wallet.createRandom();
  const accountId = `eip155:1:${wallet.address}`;
  const { message, registerParams } = await keys.prepareRegistration({
    domain: "app.example.test",
    accountId,
    statement: "I authorise this key to act for my account",
  });
  const signature = { t: "eip191", s: await wallet.signMessage(message) };
  const identityPub = await keys.registerIdentity({ registerParams, signature });
  const identityDid = didJwt.encodeEd25519Key(identityPub);
  const resolved = await keys.resolveIdentity({ publicKey: identityDid });
  assert.deepEqual(resolved, JSON.parse(JSON.stringify({ h: { t: "eip4361" }, p: registerParams.cacaoPayload, s: signature })));
  console.log("ok identity-keys: prepareRegistration, registerIdentity, resolveIdentity");

  // did-JWTs from generateIdAuth on POST and DELETE /invite.
  const inviteKey = didJwt.encodeX25519Key(Buffer.from(require("node:crypto").randomBytes(32)).toString("hex"));
  const claims = (act, extra = {}) => {
    const iat = Date.now();
    return { iat, exp: didJwt.jwtExp(iat), iss: identityDid, aud: base, pkh: didJwt.composeDidPkh(accountId), act, ...extra };
  };
  const idAuth = (act, extra) => keys.generateIdAuth(accountId, claims(act, extra));
  await directory("POST", "/invite", { idAuth: await idAuth("register_invite", { sub: inviteKey }) });
  const invite = await directory("GET", `/invite?account=${encodeURIComponent(accountId)}`);
  assert.equal(invite.value.inviteKey, inviteKey);
  await directory("DELETE", "/invite", { idAuth: await idAuth("unregister_invite", { sub: inviteKey }) });
  const gone = await directory("GET", `/invite?account=${encodeURIComponent(accountId)}`, undefined, 404);
  assert.equal(gone.error.name, "Invite key not found");
  console.log("ok identity-keys: generateIdAuth on POST and DELETE /invite");

  await keys.unregisterIdentity({ account: accountId });
  await assert.rejects(keys.resolveIdentity({ publicKey: identityDid }));
  console.log("ok identity-keys: unregisterIdentity");

  // The recap registration of WalletConnect's notify client: the payload
  // carries `uri` and a ReCap resource that extends the signed statement.
  const recapWallet = Wallet.createRandom();
  const recapAccount = `eip155:1:${recapWallet.address}`;
  const { cacaoPayload, privateIdentityKey } = await keys.prepareRegistrationWithRecaps({
    domain: "app.example.test",
    recapObject: { att: { "https://notify.walletconnect.com/all-apps": { "manage/all-apps-notifications": [{}] } } },
  });
  const iss = didJwt.composeDidPkh(recapAccount);
  const recapPayload = { ...cacaoPayload, iss };
  const recapSignature = { t: "eip191", s: await recapWallet.signMessage(formatMessage(recapPayload, iss)) };
  const recapPub = await keys.registerIdentity({
    registerParams: { cacaoPayload: recapPayload, privateIdentityKey },
    signature: recapSignature,
  });
  const recapResolved = await keys.resolveIdentity({ publicKey: didJwt.encodeEd25519Key(recapPub) });
  assert.deepEqual(recapResolved, JSON.parse(JSON.stringify({ h: { t: "eip4361" }, p: recapPayload, s: recapSignature })));
  await keys.unregisterIdentity({ account: recapAccount });
  console.log("ok identity-keys: prepareRegistrationWithRecaps (uri, ReCap statement)");
}

/** One directory call; checks the status and returns the envelope. */
async function directory(method, path, body, status = 200) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body ? { "content-type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const envelope = await response.json();
  assert.equal(response.status, status, `${method} ${path}: ${JSON.stringify(envelope)}`);
  return envelope;
}

async function main() {
  await smoochAppKeys("smooch-core 8.11.4", require("smooch-core"));
  await smoochAppKeys("smooch-core 6.6.0", require("smooch-core-6"));
  await identityKeys();
  console.log("all client flows passed");
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
