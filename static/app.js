// sponsorgate: progressive enhancement of the page's forms.
//
// The copy button of a new API token: shown only with this script; copies
// with the Clipboard API, or selects the text where that is not allowed.
(function () {
  "use strict";
  var input = document.getElementById("new-token");
  var button = document.getElementById("copy-token");
  var notice = document.getElementById("copy-notice");
  if (!input || !button) {
    return;
  }
  button.hidden = false;
  button.addEventListener("click", function () {
    function selected() {
      input.focus();
      input.select();
      notice.textContent = "Selected: press Ctrl+C (or Cmd+C) to copy.";
    }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(input.value).then(function () {
        notice.textContent = "Copied.";
      }, selected);
    } else {
      selected();
    }
  });
})();

// Without this script the forms post and the server answers 303 to "/".
// With it, adding and removing go through the JSON API (POST /exclude,
// DELETE /exclusions/{id}) and the list is updated in place; errors are
// shown in the page's alert region with the same words the server uses.
(function () {
  "use strict";

  var list = document.getElementById("exclusions");
  var addForm = document.getElementById("add-form");
  if (!list || !addForm || !window.fetch || !window.JSON) {
    return;
  }
  var input = addForm.querySelector("input[name=id]");
  var addButton = addForm.querySelector("button[type=submit]");
  var errorBox = document.getElementById("error");
  var notice = document.getElementById("notice");
  var count = document.getElementById("count");
  var empty = document.getElementById("empty");
  var itemTemplate = document.getElementById("item-template");
  var messages = {};
  try {
    messages = JSON.parse(document.getElementById("messages").textContent);
  } catch (e) {
    messages = {};
  }

  function say(errorText, noticeText) {
    errorBox.textContent = errorText || "";
    notice.textContent = noticeText || "";
  }

  function errorText(result) {
    var code = result.body && result.body.error;
    if (code && messages[code]) {
      return messages[code];
    }
    if (result.body && result.body.message) {
      return result.body.message;
    }
    return messages.network_error || "The request failed.";
  }

  function refreshCount() {
    var n = list.children.length;
    count.textContent = String(n);
    empty.hidden = n > 0;
  }

  function busy(button, on) {
    button.disabled = on;
    if (on) {
      button.setAttribute("aria-busy", "true");
    } else {
      button.removeAttribute("aria-busy");
    }
  }

  // Sends one API request; resolves to {ok, status, body}, never rejects.
  function send(method, url, payload) {
    var init = {
      method: method,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    };
    if (payload !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    return fetch(url, init).then(
      function (response) {
        if (response.status === 204) {
          return { ok: response.ok, status: response.status, body: null };
        }
        return response.json().then(
          function (body) {
            return { ok: response.ok, status: response.status, body: body };
          },
          function () {
            return { ok: response.ok, status: response.status, body: null };
          }
        );
      },
      function () {
        return { ok: false, status: 0, body: { error: "network_error" } };
      }
    );
  }

  function findItem(id) {
    for (var i = 0; i < list.children.length; i++) {
      if (list.children[i].getAttribute("data-id") === id) {
        return list.children[i];
      }
    }
    return null;
  }

  function makeItem(id) {
    var li = itemTemplate.content.firstElementChild.cloneNode(true);
    li.setAttribute("data-id", id);
    li.querySelector(".node").textContent = id;
    li.querySelector("form").setAttribute(
      "action",
      "/exclusions/" + encodeURIComponent(id) + "/delete"
    );
    li.querySelector("button").setAttribute("aria-label", "Remove " + id);
    return li;
  }

  // Keeps the list sorted like the server does.
  function insertSorted(li, id) {
    for (var i = 0; i < list.children.length; i++) {
      if (list.children[i].getAttribute("data-id") > id) {
        list.insertBefore(li, list.children[i]);
        return;
      }
    }
    list.appendChild(li);
  }

  addForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var id = input.value;
    busy(addButton, true);
    send("POST", "/exclude", { id: id }).then(function (result) {
      busy(addButton, false);
      if (!result.ok) {
        say(errorText(result));
        input.focus();
        return;
      }
      var added = result.body && typeof result.body.id === "string" ? result.body.id : id;
      if (!findItem(added)) {
        var li = makeItem(added);
        li.classList.add("added");
        insertSorted(li, added);
      }
      refreshCount();
      input.value = "";
      say("", "Excluded " + added + ".");
      input.focus();
    });
  });

  list.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("remove")) {
      return;
    }
    event.preventDefault();
    var li = form.closest("li");
    var id = li.getAttribute("data-id");
    var button = form.querySelector("button");
    busy(button, true);
    send("DELETE", "/exclusions/" + encodeURIComponent(id)).then(function (result) {
      if (!result.ok) {
        busy(button, false);
        say(errorText(result));
        button.focus();
        return;
      }
      // Keep keyboard focus in the list: the next item's button, else the input.
      var next = li.nextElementSibling || li.previousElementSibling;
      li.remove();
      refreshCount();
      say("", "Removed " + id + ".");
      (next ? next.querySelector("button") : input).focus();
    });
  });

  // An error carried back by a form post (/?error=code) is shown once: a
  // reload should not show it again.
  if (/[?&]error=/.test(window.location.search) && window.history.replaceState) {
    window.history.replaceState(null, "", window.location.pathname);
  }

  document.documentElement.setAttribute("data-enhanced", "true");
})();
