// The "API keys" panel of the document page. Standalone on purpose: it
// needs only an element <section id="api-keys" hidden> on the page and talks
// to the Smooch-style REST routes (/v1/apps/<doc>/keys) with the session
// cookie. The section is shown only while the visitor's live permission
// includes "a" (admin of the document); losing it hides the section and
// forgets any secret on show. A new key's secret is shown once, with a copy
// button; errors from the server are shown in the panel, never swallowed.
(function () {
  "use strict";

  var section = document.getElementById("api-keys");
  if (!section) return;
  var doc = decodeURIComponent(location.pathname.split("/")[1] || "");
  if (!doc) return;
  var base = "/v1/apps/" + encodeURIComponent(doc) + "/keys";

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") node.textContent = attrs[name];
      else if (name.slice(0, 2) === "on") node.addEventListener(name.slice(2), attrs[name]);
      else node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) { node.appendChild(child); });
    return node;
  }

  // Calls the REST and resolves with the JSON body; rejects with an Error
  // carrying the server's description and HTTP status.
  function call(method, path, body) {
    var init = { method: method, credentials: "same-origin", headers: {} };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (response) {
      return response.text().then(function (text) {
        var json = null;
        try { json = text ? JSON.parse(text) : {}; } catch (e) { json = null; }
        if (!response.ok) {
          var envelope = json && json.error;
          var description = envelope && (typeof envelope === "string" ? envelope : envelope.description);
          var error = new Error(description || ("HTTP " + response.status + " " + text));
          error.status = response.status;
          throw error;
        }
        return json;
      });
    });
  }

  var status = el("p", { id: "api-keys-message", role: "alert", hidden: "" });
  var reveal = el("div", { class: "key-secret note", hidden: "" });
  var list = el("ul", { id: "api-key-list", class: "list key-list", "aria-label": "API keys of this document" });
  var nameInput = el("input", { id: "api-key-name", type: "text", name: "name", required: "", maxlength: "100", autocomplete: "off", placeholder: "e.g. CI bot" });
  var form = el("form", { id: "api-key-form", class: "row key-create" }, [
    el("label", { for: "api-key-name", text: "Key name" }),
    nameInput,
    el("button", { type: "submit", text: "Create key" }),
  ]);
  // Bumped whenever the panel hides, so a listing still in flight from
  // before cannot show the section again.
  var generation = 0;

  function say(message, kind) {
    window.keystratePage.say(status, message, kind);
  }

  function showError(error) {
    say("Error: " + error.message, "error");
  }

  // Forgets the one-time secret (it must not come back later).
  function hideSecret() {
    reveal.hidden = true;
    reveal.replaceChildren();
    delete reveal.dataset.key;
  }

  // The full key "<id>/<secret>" once, with a copy button.
  function showSecret(key) {
    var full = key._id + "/" + key.secret;
    var field = el("input", { id: "api-key-secret", class: "invite-link", type: "text", readonly: "", value: full, "aria-label": "Full API key " + key.name + " (shown once)" });
    var copy = el("button", {
      type: "button",
      class: "small copy",
      text: "Copy key",
      "aria-label": "Copy the full API key " + key.name,
      onclick: function () {
        // The Clipboard API can be refused (focus, permissions): page.js
        // falls back to selecting the text.
        window.keystratePage.copyFrom(field).then(function (copied) {
          say(copied ? "Key copied." : "Key selected: press Ctrl+C (or long-press) to copy it.", "ok");
        }, showError);
      },
    });
    reveal.replaceChildren(
      el("p", { text: "New key \u201c" + key.name + "\u201d. Copy it now. Only you, its owner, can read its secret again (GET /v1/apps/\u2026/keys/" + key._id + "); other admins never see it." }),
      el("div", { class: "row" }, [field, copy]),
      el("p", { class: "hint", text: "Use it as ?key=\u2026 or Authorization: Bearer \u2026 on /invites_api." })
    );
    reveal.dataset.key = key._id;
    reveal.hidden = false;
  }

  function render(keys) {
    if (keys.length === 0) {
      list.replaceChildren(el("li", { class: "empty muted", text: "No API keys yet." }));
      return;
    }
    list.replaceChildren.apply(list, keys.map(function (key) {
      var remove = el("button", {
        type: "button",
        class: "small danger remove",
        text: "Delete",
        "aria-label": "Delete the API key " + key.name,
        onclick: function () {
          if (!confirm("Delete the key \u201c" + key.name + "\u201d? Programs using it will stop working.")) return;
          remove.disabled = true;
          call("DELETE", base + "/" + encodeURIComponent(key._id))
            .then(function () {
              if (reveal.dataset.key === key._id) hideSecret();
              say("Key \u201c" + key.name + "\u201d deleted.", "ok");
              return refresh();
            })
            .catch(function (e) { remove.disabled = false; showError(e); });
        },
      });
      return el("li", { "data-key": key._id }, [
        el("strong", { class: "key-name", text: key.name }),
        document.createTextNode(" "),
        el("code", { text: key._id }),
        document.createTextNode(" "),
        remove,
      ]);
    }));
  }

  function hide() {
    generation += 1;
    section.hidden = true;
    hideSecret();
  }

  // Lists the keys; a 403/401 means "not an admin": the panel hides.
  function refresh() {
    var asked = generation;
    return call("GET", base).then(function (body) {
      if (asked !== generation) return;
      section.hidden = false;
      render(body.keys || []);
    }, function (e) {
      if (asked !== generation) return;
      if (e.status === 401 || e.status === 403) {
        hide();
      } else {
        section.hidden = false;
        showError(e);
      }
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var button = form.querySelector("button");
    button.disabled = true;
    call("POST", base, { name: nameInput.value })
      .then(function (body) {
        say("Key \u201c" + body.key.name + "\u201d created.", "ok");
        nameInput.value = "";
        showSecret(body.key);
        return refresh();
      })
      .catch(showError)
      .then(function () { button.disabled = false; });
  });

  section.classList.add("card");
  section.setAttribute("aria-labelledby", "api-keys-title");
  section.replaceChildren(
    el("h2", { id: "api-keys-title", text: "API keys" }),
    el("p", { class: "hint", text: "Keys let programs create invites to this document as you (see /invites_api)." }),
    status,
    form,
    reveal,
    list
  );

  // Only admins manage keys, and admin rights can change while the page is
  // open: follow the live permission instead of probing the API (a refused
  // probe would be a console error for every non-admin).
  window.keystratePage.whenever(function () {
    if ((window.webstrate.user.permissions || "").indexOf("a") === -1) {
      hide();
    } else {
      refresh();
    }
  });
})();
