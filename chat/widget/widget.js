// Switchboard chat widget. Put it on a page with the org's public widget
// token:
//
//   <script src="https://switchboard.example/chat/widget.js" data-token="cw_…" defer></script>
//
// Optional attributes: data-title (the button and window title).
// The visitor gives a name and email, then chats; answers come from the
// org's chat bot or agents and are fetched every few seconds while the
// window is open. Text is always shown as text, never as HTML.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__sbchat) return;
  window.__sbchat = true;
  var token = script.getAttribute("data-token") || "";
  var title = script.getAttribute("data-title") || "Chat with us";
  var api = new URL(script.src, location.href).origin + "/chat/v1/conversations";
  var storeKey = "sbchat:" + token;
  var session = null;
  try { session = JSON.parse(sessionStorage.getItem(storeKey) || "null"); } catch (e) { session = null; }
  var after = 0, timer = null, ended = false;

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs) { if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, attrs[k]); }
    if (text) e.textContent = text;
    return e;
  }

  var css = ".sbchat-open{position:fixed;right:1rem;bottom:1rem;z-index:2147483000;padding:.7rem 1.1rem;border:0;border-radius:2rem;" +
    "background:#1a56db;color:#fff;font:600 1rem system-ui,sans-serif;cursor:pointer}" +
    ".sbchat-open:focus-visible,.sbchat-panel button:focus-visible,.sbchat-panel input:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}" +
    ".sbchat-panel{position:fixed;right:1rem;bottom:4.5rem;z-index:2147483000;width:min(22rem,calc(100vw - 2rem));max-height:70vh;display:flex;" +
    "flex-direction:column;background:#fff;color:#111;border:1px solid #888;border-radius:.6rem;box-shadow:0 4px 24px rgba(0,0,0,.25);" +
    "font:1rem/1.4 system-ui,sans-serif}" +
    ".sbchat-panel[hidden],.sbchat-panel [hidden]{display:none}" +
    ".sbchat-head{display:flex;justify-content:space-between;align-items:center;padding:.5rem .8rem;border-bottom:1px solid #ddd}" +
    ".sbchat-head h2{font-size:1rem;margin:0}" +
    ".sbchat-log{flex:1;overflow-y:auto;padding:.5rem .8rem;min-height:8rem}" +
    ".sbchat-msg{margin:.3rem 0;white-space:pre-wrap;word-wrap:break-word}.sbchat-msg b{display:block;font-size:.8rem;color:#444}" +
    ".sbchat-panel form{display:flex;flex-direction:column;gap:.4rem;padding:.5rem .8rem;border-top:1px solid #ddd}" +
    ".sbchat-panel label{font-size:.85rem}.sbchat-panel input{font:inherit;padding:.35rem;border:1px solid #666;border-radius:.3rem}" +
    ".sbchat-panel button{font:inherit;padding:.4rem .7rem;border:1px solid #1a56db;border-radius:.3rem;background:#1a56db;color:#fff;cursor:pointer}" +
    ".sbchat-panel .sbchat-quiet{background:#fff;color:#1a56db}" +
    ".sbchat-status{margin:0;padding:0 .8rem .5rem;font-size:.85rem;color:#8a1c1c}" +
    ".sbchat-sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}";
  document.head.appendChild(el("style", {}, css));

  var openBtn = el("button", { type: "button", "class": "sbchat-open", "aria-expanded": "false", "aria-controls": "sbchat-panel" }, title);
  var panel = el("div", { id: "sbchat-panel", "class": "sbchat-panel", role: "dialog", "aria-labelledby": "sbchat-title", hidden: "" });
  var head = el("div", { "class": "sbchat-head" });
  head.appendChild(el("h2", { id: "sbchat-title" }, title));
  var hideBtn = el("button", { type: "button", "class": "sbchat-quiet", "aria-label": "Close the chat window" }, "×");
  head.appendChild(hideBtn);
  panel.appendChild(head);

  var log = el("div", { "class": "sbchat-log", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
  panel.appendChild(log);

  function field(form, name, label, type, required) {
    var id = "sbchat-" + name;
    form.appendChild(el("label", { "for": id }, label));
    var attrs = { id: id, name: name, type: type, autocomplete: name === "email" ? "email" : (name === "first_name" ? "given-name" : "family-name") };
    if (required) attrs.required = "";
    var input = el("input", attrs);
    form.appendChild(input);
    return input;
  }
  var startForm = el("form", { "aria-label": "Start a chat" });
  var first = field(startForm, "first_name", "First name", "text", true);
  var last = field(startForm, "last_name", "Last name", "text", true);
  var email = field(startForm, "email", "Email", "email", true);
  startForm.appendChild(el("button", { type: "submit" }, "Start chat"));
  panel.appendChild(startForm);

  var sayForm = el("form", { "aria-label": "Send a message", hidden: "" });
  sayForm.appendChild(el("label", { "for": "sbchat-text", "class": "sbchat-sr" }, "Message"));
  var text = el("input", { id: "sbchat-text", name: "text", type: "text", maxlength: "8000", required: "", autocomplete: "off" });
  sayForm.appendChild(text);
  sayForm.appendChild(el("button", { type: "submit" }, "Send"));
  var endBtn = el("button", { type: "button", "class": "sbchat-quiet" }, "End chat");
  sayForm.appendChild(endBtn);
  panel.appendChild(sayForm);

  var status = el("p", { "class": "sbchat-status", role: "status" });
  panel.appendChild(status);
  document.body.appendChild(openBtn);
  document.body.appendChild(panel);

  function request(method, path, body) {
    var headers = { "X-Chat-Token": token };
    if (session) headers["X-Visitor-Token"] = session.visitor_token;
    if (body) headers["Content-Type"] = "application/json";
    return fetch(api + path, { method: method, headers: headers, body: body ? JSON.stringify(body) : undefined })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (j) {
          if (!r.ok) throw new Error((j.error && j.error.message) || ("HTTP " + r.status));
          return j;
        });
      });
  }

  function show(m) {
    var who = m.name || (m.speaker === "visitor" ? "You" : (m.speaker === "bot" ? "Bot" : "Agent"));
    var p = el("p", { "class": "sbchat-msg" });
    p.appendChild(el("b", {}, who));
    p.appendChild(document.createTextNode(m.text));
    log.appendChild(p);
    log.scrollTop = log.scrollHeight;
  }

  function setEnded() {
    ended = true;
    sayForm.hidden = true;
    status.textContent = "This chat has ended. Thank you!";
    try { sessionStorage.removeItem(storeKey); } catch (e) { /* storage unavailable */ }
  }

  function poll() {
    clearTimeout(timer);
    if (!session || ended) return;
    request("GET", "/" + encodeURIComponent(session.conversation_id) + "/messages?after=" + after).then(function (j) {
      (j.messages || []).forEach(function (m) { after = Math.max(after, m.seq); show(m); });
      status.textContent = "";
      if (j.state !== "open") { setEnded(); return; }
      if (!panel.hidden) timer = setTimeout(poll, 3000);
    }).catch(function (err) {
      status.textContent = err.message;
      if (!panel.hidden) timer = setTimeout(poll, 10000);
    });
  }

  function chatting() {
    startForm.hidden = true;
    sayForm.hidden = false;
    poll();
  }

  function setOpen(open) {
    panel.hidden = !open;
    openBtn.setAttribute("aria-expanded", String(open));
    if (open) {
      (session ? text : first).focus();
      poll();
    } else {
      clearTimeout(timer);
      openBtn.focus();
    }
  }

  openBtn.addEventListener("click", function () { setOpen(panel.hidden); });
  hideBtn.addEventListener("click", function () { setOpen(false); });
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") setOpen(false); });

  startForm.addEventListener("submit", function (e) {
    e.preventDefault();
    status.textContent = "";
    request("POST", "", { fields: { first_name: first.value, last_name: last.value, email: email.value } }).then(function (j) {
      session = j;
      try { sessionStorage.setItem(storeKey, JSON.stringify(j)); } catch (err) { /* storage unavailable */ }
      chatting();
      text.focus();
    }).catch(function (err) { status.textContent = err.message; });
  });

  sayForm.addEventListener("submit", function (e) {
    e.preventDefault();
    var t = text.value;
    if (!t.trim()) return;
    request("POST", "/" + encodeURIComponent(session.conversation_id) + "/messages", { text: t }).then(function () {
      text.value = "";
      poll();
    }).catch(function (err) { status.textContent = err.message; });
  });

  endBtn.addEventListener("click", function () {
    request("POST", "/" + encodeURIComponent(session.conversation_id) + "/close").then(setEnded)
      .catch(function (err) { status.textContent = err.message; });
  });

  if (session) chatting();
})();
