// The "API keys" panel of the document page. Standalone on purpose: it
// needs only an element <section id="api-keys" hidden> on the page and talks
// to the Smooch-style REST routes (/v1/apps/<doc>/keys) with the session
// cookie. The section stays hidden unless the server lets the visitor list
// keys, i.e. unless the visitor is an admin of the document. A new key's
// secret is shown once, with a copy button; errors from the server are shown
// in the panel, never swallowed.
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
          var description = json && json.error && (json.error.description || json.error);
          var error = new Error(description || ("HTTP " + response.status + " " + text));
          error.status = response.status;
          throw error;
        }
        return json;
      });
    });
  }

  var status = el("p", { class: "error", role: "alert", hidden: "" });
  var reveal = el("div", { class: "key-secret", hidden: "" });
  var list = el("ul", { class: "key-list" });
  var nameInput = el("input", { type: "text", name: "name", required: "", maxlength: "100", placeholder: "Key name, e.g. CI bot" });
  var form = el("form", { class: "key-create" }, [
    el("label", {}, [document.createTextNode("Name "), nameInput]),
    el("button", { type: "submit", text: "Create key" }),
  ]);

  function showError(error) {
    status.textContent = "Error: " + error.message;
    status.hidden = false;
  }

  function clearError() {
    status.hidden = true;
    status.textContent = "";
  }

  // The full key "<id>/<secret>" once, with a copy button.
  function showSecret(key) {
    var full = key._id + "/" + key.secret;
    var field = el("input", { type: "text", readonly: "", value: full, size: String(full.length) });
    var copy = el("button", {
      type: "button",
      text: "Copy",
      onclick: function () {
        var done = function () { copy.textContent = "Copied"; };
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(full).then(done, function (e) { showError(e); });
        } else {
          field.select();
          document.execCommand("copy");
          done();
        }
      },
    });
    reveal.replaceChildren(
      el("p", { text: "New key \u201c" + key.name + "\u201d. Copy it now: the full key is shown only once." }),
      field,
      copy,
      el("p", { class: "hint", text: "Use it as ?key=\u2026 or Authorization: Bearer \u2026 on /invites_api." })
    );
    reveal.hidden = false;
  }

  function render(keys) {
    if (keys.length === 0) {
      list.replaceChildren(el("li", { class: "empty", text: "No API keys yet." }));
      return;
    }
    list.replaceChildren.apply(list, keys.map(function (key) {
      var remove = el("button", {
        type: "button",
        text: "Delete",
        onclick: function () {
          if (!confirm("Delete the key \u201c" + key.name + "\u201d? Programs using it will stop working.")) return;
          remove.disabled = true;
          call("DELETE", base + "/" + encodeURIComponent(key._id))
            .then(function () { clearError(); return refresh(); })
            .catch(function (e) { remove.disabled = false; showError(e); });
        },
      });
      return el("li", {}, [
        el("span", { class: "key-name", text: key.name }),
        document.createTextNode(" "),
        el("code", { text: key._id }),
        document.createTextNode(" "),
        remove,
      ]);
    }));
  }

  // Lists the keys; a 403/401 means "not an admin": the panel hides.
  function refresh() {
    return call("GET", base).then(function (body) {
      section.hidden = false;
      render(body.keys || []);
    }, function (e) {
      if (e.status === 401 || e.status === 403) {
        section.hidden = true;
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
        clearError();
        nameInput.value = "";
        showSecret(body.key);
        return refresh();
      })
      .catch(showError)
      .then(function () { button.disabled = false; });
  });

  section.replaceChildren(
    el("h2", { text: "API keys" }),
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
    if (window.webstrate.user.permissions.indexOf("a") === -1) {
      section.hidden = true;
    } else {
      refresh();
    }
  });
})();
