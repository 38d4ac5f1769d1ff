/*
 * EchoForge chat widget. Embed an agent on any page of an allowed domain with:
 *
 *   <script src="https://YOUR-ECHOFORGE-HOST/widget.js" data-agent="pub_..." async></script>
 *
 * Everything lives in a shadow root (the page's CSS cannot reach it). The widget reads its
 * look from GET /api/v1/widget/{agent}/config, streams answers from POST .../chat (Server-Sent
 * Events read with fetch), keeps the visitor's id and conversation in localStorage, reloads
 * the conversation when reopened, and retries after a network loss. While a person of the
 * business has the conversation (live handoff), GET .../conversations/{id}/events streams their
 * replies and the conversation's state; the stream reconnects with backoff and fetches what it
 * missed. Text from the model, the visitor, the business's people or the configuration is only
 * ever set with textContent, never parsed as HTML.
 */
(function () {
  "use strict";

  var script =
    document.currentScript ||
    document.querySelector('script[data-agent][src*="widget.js"]');
  if (!script || !script.getAttribute("data-agent")) return;
  var agent = script.getAttribute("data-agent");
  var registry = (window.__echoforgeWidgets = window.__echoforgeWidgets || {});
  if (registry[agent]) return;
  registry[agent] = true;

  var base = new URL(script.src, document.baseURI).origin;
  var api = base + "/api/v1/widget/" + encodeURIComponent(agent);
  var storePrefix = "echoforge-widget:" + agent + ":";
  var MAX_ATTEMPTS = 6;

  // ---- storage (localStorage may be unavailable: private modes, sandboxed frames) ----
  var memory = {};
  function load(key) {
    try {
      return window.localStorage.getItem(storePrefix + key);
    } catch (_) {
      return memory[key] || null;
    }
  }
  function save(key, value) {
    try {
      if (value == null) window.localStorage.removeItem(storePrefix + key);
      else window.localStorage.setItem(storePrefix + key, value);
    } catch (_) {
      if (value == null) delete memory[key];
      else memory[key] = value;
    }
  }
  function visitorId() {
    var v = load("visitor");
    if (v && /^[A-Za-z0-9_-]{16,64}$/.test(v)) return v;
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    v = "v_" + Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
    save("visitor", v);
    return v;
  }
  var visitor = visitorId();

  // ---- small helpers ----
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function sleep(ms) {
    return new Promise(function (resolve) {
      var done = function () {
        window.removeEventListener("online", done);
        clearTimeout(t);
        resolve();
      };
      var t = setTimeout(done, ms);
      // Coming back online ends the wait early.
      window.addEventListener("online", done);
    });
  }
  function backoff(attempt) {
    return Math.min(8000, 500 * Math.pow(2, attempt)) + Math.floor(Math.random() * 250);
  }
  function webUrl(u) {
    try {
      var parsed = new URL(u);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (_) {
      return null;
    }
  }
  function hex(c, fallback) {
    return typeof c === "string" && /^#[0-9A-Fa-f]{6}$/.test(c) ? c : fallback;
  }
  function request(path, init) {
    init = init || {};
    init.mode = "cors";
    init.credentials = "omit";
    init.headers = init.headers || {};
    init.headers["echoforge-visitor"] = visitor;
    return fetch(api + path, init);
  }
  function problemOf(resp) {
    return resp.json().then(
      function (p) { return p || {}; },
      function () { return {}; }
    );
  }

  // ---- configuration ----
  function loadConfig(attempt) {
    // No custom header here: the config is a simple CORS request (no preflight).
    return fetch(api + "/config", { mode: "cors", credentials: "omit" }).then(
      function (resp) {
        if (resp.ok) return resp.json();
        return problemOf(resp).then(function (p) {
          throw { fatal: true, message: p.detail || "the chat is not available (" + resp.status + ")" };
        });
      },
      function () {
        // A network failure, or this page's origin is not allowed (the browser hides which).
        if (attempt >= 3) throw { fatal: true, message: "the chat server could not be reached from this page" };
        return sleep(backoff(attempt)).then(function () { return loadConfig(attempt + 1); });
      }
    );
  }

  var SIZES = { small: [320, 440], medium: [370, 540], large: [420, 640] };

  var CSS = [
    ":host { all: initial; }",
    "* { box-sizing: border-box; }",
    ".ef-root { --ef-primary: #3B82F6; --ef-secondary: #1E40AF; --ef-bg: #ffffff; --ef-fg: #111827;",
    "  --ef-muted: #6b7280; --ef-bubble-user: var(--ef-primary); --ef-bubble-bot: #f3f4f6; --ef-border: #e5e7eb;",
    "  font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: var(--ef-fg); }",
    ".ef-root.ef-dark { --ef-bg: #111827; --ef-fg: #f9fafb; --ef-muted: #9ca3af; --ef-bubble-bot: #1f2937; --ef-border: #374151; }",
    ".ef-launcher { position: fixed; bottom: 20px; width: 56px; height: 56px; border-radius: 50%; border: 0;",
    "  background: var(--ef-primary); color: #fff; cursor: pointer; box-shadow: 0 6px 20px rgba(0,0,0,.25);",
    "  display: flex; align-items: center; justify-content: center; z-index: 2147483000; padding: 0; }",
    ".ef-launcher:hover { background: var(--ef-secondary); }",
    ".ef-launcher:focus-visible, .ef-icon-btn:focus-visible, .ef-send:focus-visible { outline: 3px solid var(--ef-secondary); outline-offset: 2px; }",
    ".ef-launcher img { width: 32px; height: 32px; border-radius: 50%; object-fit: cover; }",
    ".ef-right .ef-launcher, .ef-right .ef-panel { right: 20px; }",
    ".ef-left .ef-launcher, .ef-left .ef-panel { left: 20px; }",
    ".ef-panel { position: fixed; bottom: 88px; display: none; flex-direction: column; overflow: hidden;",
    "  background: var(--ef-bg); border: 1px solid var(--ef-border); border-radius: 14px;",
    "  box-shadow: 0 12px 40px rgba(0,0,0,.25); z-index: 2147483000; max-height: calc(100vh - 110px); max-width: calc(100vw - 40px); }",
    ".ef-open .ef-panel { display: flex; }",
    ".ef-header { display: flex; align-items: center; gap: 10px; padding: 12px 14px; background: var(--ef-primary); color: #fff; }",
    ".ef-avatar { width: 34px; height: 34px; border-radius: 50%; background: var(--ef-secondary); color: #fff; flex: none;",
    "  display: flex; align-items: center; justify-content: center; font-weight: 600; overflow: hidden; }",
    ".ef-avatar img { width: 100%; height: 100%; object-fit: cover; }",
    ".ef-title { flex: 1; min-width: 0; }",
    ".ef-name { font-weight: 600; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }",
    ".ef-status { font-size: 12px; opacity: .9; }",
    ".ef-status::before { content: ''; display: inline-block; width: 7px; height: 7px; border-radius: 50%; background: #34d399; margin-right: 5px; }",
    ".ef-offline .ef-status::before { background: #f59e0b; }",
    ".ef-icon-btn { background: transparent; border: 0; color: #fff; cursor: pointer; font-size: 18px; width: 30px; height: 30px; border-radius: 6px; }",
    ".ef-icon-btn:hover { background: rgba(255,255,255,.15); }",
    ".ef-messages { flex: 1; overflow-y: auto; padding: 14px; display: flex; flex-direction: column; gap: 10px; }",
    ".ef-msg { max-width: 85%; padding: 9px 12px; border-radius: 12px; white-space: pre-wrap; word-wrap: break-word; }",
    ".ef-user { align-self: flex-end; background: var(--ef-bubble-user); color: #fff; border-bottom-right-radius: 4px; }",
    ".ef-assistant { align-self: flex-start; background: var(--ef-bubble-bot); color: var(--ef-fg); border-bottom-left-radius: 4px; }",
    ".ef-human { align-self: flex-start; background: var(--ef-bubble-bot); color: var(--ef-fg); border-bottom-left-radius: 4px; border-left: 3px solid var(--ef-bubble-user); }",
    ".ef-author { font-size: 11px; opacity: .7; margin-bottom: 2px; }",
    ".ef-handoff { align-self: stretch; max-width: 100%; background: transparent; font-size: 12px; opacity: .75; text-align: center; }",
    ".ef-error { align-self: stretch; max-width: 100%; background: transparent; color: #b91c1c; font-size: 13px; text-align: center; }",
    ".ef-dark .ef-error { color: #fca5a5; }",
    ".ef-typing::after { content: '\\2026'; animation: ef-blink 1s infinite; }",
    "@keyframes ef-blink { 50% { opacity: .2; } }",
    ".ef-sources { margin: 4px 0 0; padding: 0 0 0 18px; font-size: 12px; white-space: normal; }",
    ".ef-sources-label { font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: var(--ef-muted);",
    "  margin-top: 8px; padding-top: 6px; border-top: 1px solid var(--ef-border); }",
    ".ef-sources a { color: var(--ef-secondary); }",
    ".ef-dark .ef-sources a { color: #93c5fd; }",
    ".ef-source-detail { color: var(--ef-muted); }",
    ".ef-notice { padding: 6px 14px; font-size: 12px; color: var(--ef-muted); border-top: 1px solid var(--ef-border); display: none; }",
    ".ef-notice.ef-show { display: block; }",
    ".ef-form { display: flex; gap: 8px; padding: 10px; border-top: 1px solid var(--ef-border); }",
    ".ef-input { flex: 1; resize: none; border: 1px solid var(--ef-border); border-radius: 10px; padding: 8px 10px; font: inherit;",
    "  color: var(--ef-fg); background: var(--ef-bg); max-height: 120px; }",
    ".ef-input:focus { outline: 2px solid var(--ef-primary); outline-offset: 0; }",
    ".ef-send { border: 0; border-radius: 10px; padding: 0 14px; background: var(--ef-primary); color: #fff; font: inherit; font-weight: 600; cursor: pointer; }",
    ".ef-send:disabled { opacity: .5; cursor: default; }",
    "@media (max-width: 480px) { .ef-panel { left: 8px !important; right: 8px !important; bottom: 84px; width: auto !important; max-width: none; } }",
  ].join("\n");

  var CHAT_ICON =
    "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z";

  function mount(cfg) {
    var host = document.createElement("echoforge-widget");
    host.setAttribute("data-agent", agent);
    var shadow = host.attachShadow({ mode: "open" });
    // A constructed stylesheet is not an inline <style>, so a page whose Content-Security-Policy
    // forbids inline styles still styles the widget.
    if ("adoptedStyleSheets" in shadow && window.CSSStyleSheet && CSSStyleSheet.prototype.replaceSync) {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      shadow.adoptedStyleSheets = [sheet];
    } else {
      var style = el("style");
      style.textContent = CSS;
      shadow.appendChild(style);
    }

    var root = el("div", "ef-root " + (cfg.position === "bottom-left" ? "ef-left" : "ef-right"));
    root.style.setProperty("--ef-primary", hex(cfg.colors && cfg.colors.primary, "#3B82F6"));
    root.style.setProperty("--ef-secondary", hex(cfg.colors && cfg.colors.secondary, "#1E40AF"));
    shadow.appendChild(root);

    // Theme: light, dark, or the visitor's preference.
    var darkQuery = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
    function applyTheme() {
      var dark = cfg.theme === "dark" || (cfg.theme === "auto" && darkQuery && darkQuery.matches);
      root.classList.toggle("ef-dark", !!dark);
    }
    applyTheme();
    if (cfg.theme === "auto" && darkQuery && darkQuery.addEventListener) darkQuery.addEventListener("change", applyTheme);

    var name = typeof cfg.name === "string" && cfg.name ? cfg.name : "Assistant";

    // Launcher bubble.
    var launcher = el("button", "ef-launcher");
    launcher.type = "button";
    launcher.setAttribute("aria-label", "Open chat with " + name);
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("part", "launcher");
    var iconUrl = cfg.launcher_icon_url && webUrl(cfg.launcher_icon_url);
    if (iconUrl) {
      var icon = el("img");
      icon.alt = "";
      icon.src = iconUrl;
      launcher.appendChild(icon);
    } else {
      var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
      svg.setAttribute("viewBox", "0 0 24 24");
      svg.setAttribute("width", "26");
      svg.setAttribute("height", "26");
      svg.setAttribute("aria-hidden", "true");
      var path = document.createElementNS("http://www.w3.org/2000/svg", "path");
      path.setAttribute("d", CHAT_ICON);
      path.setAttribute("fill", "currentColor");
      svg.appendChild(path);
      launcher.appendChild(svg);
    }

    // Panel.
    var size = SIZES[cfg.size] || SIZES.medium;
    var panel = el("div", "ef-panel");
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", "Chat with " + name);
    panel.style.width = size[0] + "px";
    panel.style.height = size[1] + "px";

    var header = el("div", "ef-header");
    if (cfg.show_avatar !== false) {
      var avatar = el("div", "ef-avatar");
      var avatarUrl = cfg.avatar_url && webUrl(cfg.avatar_url);
      if (avatarUrl) {
        var img = el("img");
        img.alt = "";
        img.src = avatarUrl;
        avatar.appendChild(img);
      } else {
        avatar.textContent = Array.from(name.trim())[0] ? Array.from(name.trim())[0].toUpperCase() : "?";
      }
      header.appendChild(avatar);
    }
    var title = el("div", "ef-title");
    title.appendChild(el("div", "ef-name", name));
    var status = null;
    if (cfg.show_status !== false) {
      status = el("div", "ef-status", "Online");
      title.appendChild(status);
    }
    header.appendChild(title);
    var restart = el("button", "ef-icon-btn", "\u21bb");
    restart.type = "button";
    restart.title = "Start a new conversation";
    restart.setAttribute("aria-label", "Start a new conversation");
    header.appendChild(restart);
    var close = el("button", "ef-icon-btn", "\u00d7");
    close.type = "button";
    close.setAttribute("aria-label", "Close chat");
    header.appendChild(close);

    var list = el("div", "ef-messages");
    list.setAttribute("role", "log");
    list.setAttribute("aria-live", "polite");
    var notice = el("div", "ef-notice");
    notice.setAttribute("role", "status");
    var form = el("form", "ef-form");
    var input = el("textarea", "ef-input");
    input.rows = 1;
    input.placeholder = typeof cfg.placeholder === "string" ? cfg.placeholder : "";
    input.setAttribute("aria-label", "Message");
    input.maxLength = 4000;
    var sendBtn = el("button", "ef-send", "Send");
    sendBtn.type = "submit";
    form.appendChild(input);
    form.appendChild(sendBtn);

    panel.appendChild(header);
    panel.appendChild(list);
    panel.appendChild(notice);
    panel.appendChild(form);
    root.appendChild(panel);
    root.appendChild(launcher);

    // ---- state ----
    var conversationId = load("conversation");
    var historyLoaded = false;
    var busy = false;

    function setNotice(text) {
      notice.textContent = text || "";
      notice.classList.toggle("ef-show", !!text);
      root.classList.toggle("ef-offline", !!text);
      if (status) status.textContent = text ? "Reconnecting" : "Online";
    }
    function scrollDown() {
      list.scrollTop = list.scrollHeight;
    }
    function addMessage(role, text) {
      var m = el("div", "ef-msg ef-" + role);
      var body = el("div", "ef-body", text || "");
      m.appendChild(body);
      list.appendChild(m);
      scrollDown();
      return { el: m, body: body, sources: null, seen: {} };
    }
    function addError(text) {
      var m = el("div", "ef-msg ef-error", text);
      m.setAttribute("role", "alert");
      list.appendChild(m);
      scrollDown();
    }
    function addSource(msg, c) {
      if (!c || typeof c !== "object") return;
      var key = c.index != null ? "i" + c.index : (c.title || c.document_title || "") + (c.page || "");
      if (msg.seen[key]) return;
      msg.seen[key] = true;
      if (!msg.sources) {
        msg.el.appendChild(el("div", "ef-sources-label", "Sources"));
        msg.sources = el("ol", "ef-sources");
        msg.el.appendChild(msg.sources);
      }
      var li = el("li");
      var titleText = String(c.title || c.document_title || "Source");
      var url = webUrl(c.url || c.source_url || "");
      if (url) {
        var a = el("a", null, titleText);
        a.href = url;
        a.target = "_blank";
        a.rel = "noopener noreferrer";
        li.appendChild(a);
      } else {
        li.appendChild(el("span", "ef-source-title", titleText));
      }
      var detail = [];
      if (c.heading) detail.push(String(c.heading));
      if (c.page) detail.push("p. " + c.page);
      if (detail.length) li.appendChild(el("span", "ef-source-detail", " \u2014 " + detail.join(", ")));
      if (c.excerpt) li.title = String(c.excerpt);
      msg.sources.appendChild(li);
    }
    function renderStored(m) {
      if (m.role === "human_agent") return addHuman(m);
      var msg = addMessage(m.role === "user" ? "user" : "assistant", m.content);
      (m.citations || []).forEach(function (c) { addSource(msg, c); });
    }
    // A reply from a person of the business, with their name.
    var lastHumanAt = 0;
    var shownHuman = {};
    function addHuman(m) {
      var key = m.id || m.created_at + ":" + m.content;
      if (shownHuman[key]) return;
      shownHuman[key] = true;
      if (m.created_at > lastHumanAt) lastHumanAt = m.created_at;
      var msg = addMessage("human", "");
      if (m.author) msg.el.insertBefore(el("div", "ef-author", String(m.author)), msg.body);
      msg.body.textContent = String(m.content || "");
      scrollDown();
    }
    function addHandoffNote(text) {
      list.appendChild(el("div", "ef-msg ef-handoff", text));
      scrollDown();
    }
    function setBusy(b) {
      busy = b;
      sendBtn.disabled = b;
    }

    addMessage("assistant", cfg.welcome_message || "");

    // ---- history ----
    function loadHistory(attempt) {
      if (!conversationId) {
        historyLoaded = true;
        return Promise.resolve();
      }
      return request("/conversations/" + encodeURIComponent(conversationId)).then(
        function (resp) {
          if (resp.status === 404) {
            conversationId = null;
            save("conversation", null);
            historyLoaded = true;
            return;
          }
          if (!resp.ok) {
            historyLoaded = true;
            return;
          }
          return resp.json().then(function (c) {
            (c.messages || []).forEach(renderStored);
            historyLoaded = true;
            setNotice("");
            watch();
          });
        },
        function () {
          if (attempt >= MAX_ATTEMPTS) {
            setNotice("Offline: your earlier messages will appear when the connection is back.");
            return;
          }
          setNotice("Connection lost. Reconnecting\u2026");
          return sleep(backoff(attempt)).then(function () { return loadHistory(attempt + 1); });
        }
      );
    }

    // ---- streaming ----
    function readEvents(resp, onEvent) {
      var reader = resp.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      function flush(block) {
        var name = "message";
        var data = "";
        block.split(/\r?\n/).forEach(function (line) {
          if (line.indexOf("event:") === 0) name = line.slice(6).trim();
          else if (line.indexOf("data:") === 0) data += (data ? "\n" : "") + line.slice(5).replace(/^ /, "");
        });
        if (!data) return;
        var parsed;
        try {
          parsed = JSON.parse(data);
        } catch (_) {
          return;
        }
        onEvent(name, parsed);
      }
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) {
            if (buffer.trim()) flush(buffer);
            return;
          }
          buffer += decoder.decode(chunk.value, { stream: true });
          var parts = buffer.split(/\r?\n\r?\n/);
          buffer = parts.pop();
          parts.forEach(flush);
          return pump();
        });
      }
      return pump();
    }

    // Streams one answer into `reply`; resolves to {started, done}.
    function stream(resp, reply) {
      var state = { started: false, done: false, text: "" };
      reply.body.classList.add("ef-typing");
      return readEvents(resp, function (name, data) {
        if (name === "run.started") {
          state.started = true;
          if (data.conversation_id) {
            conversationId = data.conversation_id;
            save("conversation", conversationId);
            watch();
          }
        } else if (name === "message.delta" && typeof data.delta === "string") {
          state.text += data.delta;
          reply.body.textContent = state.text;
          scrollDown();
        } else if (name === "citation") {
          addSource(reply, data);
        } else if (name === "message.completed") {
          if (typeof data.content === "string" && data.content) reply.body.textContent = data.content;
          (data.citations || []).forEach(function (c) { addSource(reply, c); });
        } else if (name === "run.completed") {
          state.done = true;
          if (data.status === "awaiting_action" && !reply.body.textContent) {
            reply.body.textContent = "A member of the team needs to approve this before I can continue.";
          }
        } else if (name === "run.failed") {
          state.done = true;
          reply.el.remove();
          addError("Sorry, I could not answer that" + (data.message ? ": " + data.message : "."));
        }
      }).then(
        function () { reply.body.classList.remove("ef-typing"); return state; },
        function () { reply.body.classList.remove("ef-typing"); return state; }
      );
    }

    // After a stream broke mid-answer: the run goes on on the server, so wait for the
    // stored answer instead of asking again.
    function recover(reply, question, attempt) {
      return request("/conversations/" + encodeURIComponent(conversationId)).then(
        function (resp) { return resp.ok ? resp.json() : null; },
        function () { return null; }
      ).then(function (c) {
        var msgs = (c && c.messages) || [];
        var asked = -1;
        for (var i = msgs.length - 1; i >= 0; i--) {
          if (msgs[i].role === "user" && msgs[i].content === question) { asked = i; break; }
        }
        var answer = asked >= 0 ? msgs.slice(asked + 1).find(function (m) { return m.role === "assistant"; }) : null;
        if (answer) {
          reply.body.textContent = answer.content;
          (answer.citations || []).forEach(function (cit) { addSource(reply, cit); });
          setNotice("");
          return;
        }
        if (attempt >= MAX_ATTEMPTS + 4) {
          reply.el.remove();
          setNotice("");
          addError("The connection was lost before the answer arrived. Please ask again.");
          return;
        }
        setNotice("Connection lost. Reconnecting\u2026");
        return sleep(backoff(Math.min(attempt, 4))).then(function () {
          return recover(reply, question, attempt + 1);
        });
      });
    }

    function send(text) {
      setBusy(true);
      addMessage("user", text);
      var reply = addMessage("assistant", "");
      reply.body.classList.add("ef-typing");
      var attempt = 0;
      function tryOnce() {
        var body = { message: text };
        if (conversationId) body.conversation_id = conversationId;
        return request("/chat", {
          method: "POST",
          headers: { "content-type": "application/json", accept: "text/event-stream" },
          body: JSON.stringify(body),
        }).then(
          function (resp) {
            setNotice("");
            if (resp.status === 404 && conversationId) {
              // The conversation is gone (deleted): start a new one.
              conversationId = null;
              save("conversation", null);
              return tryOnce();
            }
            if (resp.status === 429) {
              var wait = parseInt(resp.headers.get("retry-after") || "", 10);
              reply.el.remove();
              addError("You are sending messages too quickly." + (wait > 0 ? " Please wait " + wait + " seconds." : ""));
              return;
            }
            if (!resp.ok) {
              return problemOf(resp).then(function (p) {
                reply.el.remove();
                addError(p.detail ? "Sorry: " + p.detail : "Sorry, something went wrong (" + resp.status + ").");
              });
            }
            return stream(resp, reply).then(function (state) {
              // A person has the conversation: the bot says nothing.
              if (state.done && !reply.body.textContent) reply.el.remove();
              if (state.done) return;
              if (state.started && conversationId) return recover(reply, text, 0);
              throw new Error("the answer stopped before it started");
            });
          },
          function () {
            // No response at all: the message did not arrive, so sending again is safe.
            attempt += 1;
            if (attempt > MAX_ATTEMPTS) {
              reply.el.remove();
              setNotice("");
              addError("Could not reach the assistant. Check your connection and try again.");
              return;
            }
            setNotice("Connection lost. Reconnecting\u2026");
            return sleep(backoff(attempt)).then(tryOnce);
          }
        );
      }
      return tryOnce()
        .catch(function () {
          reply.el.remove();
          addError("Sorry, something went wrong. Please try again.");
        })
        .then(function () {
          reply.body.classList.remove("ef-typing");
          setBusy(false);
          input.focus();
        });
    }

    // ---- live handoff: people's replies and the conversation's state ----
    var watching = null;
    var lastState = null;
    function showState(d) {
      if (!d || d.state === lastState && d.state !== "waiting") return;
      var first = lastState === null;
      lastState = d.state;
      if (d.state === "human") addHandoffNote((d.operator ? d.operator : "A person") + " joined the conversation.");
      else if (d.state === "bot" && !first) addHandoffNote("You are chatting with " + name + " again.");
      else if (d.state === "closed" && !first) addHandoffNote("The conversation was closed.");
    }
    function catchUp() {
      // Replies written while the stream was down.
      return request("/conversations/" + encodeURIComponent(watching)).then(
        function (resp) { return resp.ok ? resp.json() : null; },
        function () { return null; }
      ).then(function (c) {
        ((c && c.messages) || []).forEach(function (m) {
          if (m.role === "human_agent" && m.created_at >= lastHumanAt) addHuman(m);
        });
      });
    }
    function watch() {
      if (!conversationId || watching === conversationId) return;
      var id = (watching = conversationId);
      function connect(attempt) {
        if (watching !== id) return;
        request("/conversations/" + encodeURIComponent(id) + "/events", { headers: { accept: "text/event-stream" } }).then(
          function (resp) {
            if (resp.status === 404 || resp.status === 403) { watching = null; return; }
            if (!resp.ok || !resp.body) throw new Error("no stream");
            if (attempt > 0) catchUp();
            attempt = 0;
            return readEvents(resp, function (evt, data) {
              if (watching !== id) return;
              if (evt === "handoff.state") showState(data);
              else if (evt === "message" && data.message && data.message.role === "human_agent") addHuman(data.message);
              else if (evt === "handoff.lagged") catchUp();
            });
          }
        ).then(
          function () { return sleep(backoff(attempt)).then(function () { connect(attempt + 1); }); },
          function () { return sleep(backoff(attempt + 1)).then(function () { connect(attempt + 1); }); }
        );
      }
      connect(0);
    }

    // ---- interaction ----
    function open() {
      root.classList.add("ef-open");
      launcher.setAttribute("aria-expanded", "true");
      launcher.setAttribute("aria-label", "Close chat with " + name);
      if (!historyLoaded) loadHistory(0);
      input.focus();
    }
    function hide() {
      root.classList.remove("ef-open");
      launcher.setAttribute("aria-expanded", "false");
      launcher.setAttribute("aria-label", "Open chat with " + name);
      launcher.focus();
    }
    launcher.addEventListener("click", function () {
      if (root.classList.contains("ef-open")) hide();
      else open();
    });
    close.addEventListener("click", hide);
    restart.addEventListener("click", function () {
      if (busy) return;
      conversationId = null;
      watching = null;
      lastState = null;
      save("conversation", null);
      while (list.firstChild) list.removeChild(list.firstChild);
      addMessage("assistant", cfg.welcome_message || "");
      input.focus();
    });
    panel.addEventListener("keydown", function (e) {
      if (e.key === "Escape") hide();
    });
    input.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit", { cancelable: true }));
      }
    });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var text = input.value.trim();
      if (!text || busy) return;
      input.value = "";
      send(text);
    });
    window.addEventListener("offline", function () {
      setNotice("You are offline. Messages will be sent when the connection is back.");
    });
    window.addEventListener("online", function () {
      if (!busy) setNotice("");
    });

    // ---- showing the bubble ----
    // Phones: a narrow layout, or a touch-only device (pages without a viewport tag are laid
    // out wide on phones).
    var mobileQuery = window.matchMedia
      ? window.matchMedia("(max-width: 640px), (hover: none) and (pointer: coarse)")
      : null;
    function applyMobile() {
      var hidden = cfg.show_on_mobile === false && mobileQuery && mobileQuery.matches;
      host.style.display = hidden ? "none" : "";
    }
    function show() {
      applyMobile();
      if (mobileQuery && mobileQuery.addEventListener) mobileQuery.addEventListener("change", applyMobile);
      (document.body || document.documentElement).appendChild(host);
    }
    var delay = Math.max(0, Math.min(60, Number(cfg.open_delay_seconds) || 0));
    if (delay) setTimeout(show, delay * 1000);
    else show();
  }

  function start() {
    loadConfig(0).then(mount, function (e) {
      if (window.console) console.warn("EchoForge widget: " + ((e && e.message) || e));
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
