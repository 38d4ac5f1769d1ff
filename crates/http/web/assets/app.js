// EchoForge web app: small progressive enhancement over server-rendered pages.
// Forms and buttons call the REST API with the session cookie and the page's CSRF token;
// problem+json field errors are shown next to their fields and nothing the user typed is lost.
// Text from users, documents and models is only ever inserted with textContent.
(() => {
  'use strict';

  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const csrf = () => $('meta[name="csrf-token"]')?.content || '';

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else node.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  function toast(text) {
    const t = $('#toast');
    if (!t) return;
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
  }

  class ApiError extends Error {
    constructor(status, problem) {
      super(problem?.detail || problem?.title || `request failed (${status})`);
      this.status = status;
      this.problem = problem || {};
    }
  }

  // A reached plan limit or spent credits (402): the message, and the way on — the plans in
  // Settings (owners and admins change the plan there).
  function offerUpgrade(box, err) {
    const code = err?.problem?.code;
    if (!box || err?.status !== 402 || !['plan_limit_reached', 'credits_exhausted'].includes(code)) return;
    box.append(' ', el('a', { href: '/settings#plan', 'data-upgrade': true, text: 'See plans and upgrade' }));
  }

  async function api(method, url, body, extraHeaders = {}) {
    const headers = { 'X-CSRF-Token': csrf(), Accept: 'application/json', ...extraHeaders };
    let payload;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(url, { method, headers, body: payload, credentials: 'same-origin' });
    } catch (e) {
      throw new ApiError(0, { detail: 'The server could not be reached. Check your connection and try again.' });
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch { data = { detail: text }; }
    }
    if (!res.ok) {
      if (res.status === 401) data = { ...(data || {}), detail: 'Your session has ended. Sign in again.' };
      throw new ApiError(res.status, data);
    }
    return data;
  }

  // ---------- form serialisation ----------
  function getPath(obj, path) {
    return path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
  }
  function setPath(obj, path, value) {
    const parts = path.split('.');
    let o = obj;
    for (const p of parts.slice(0, -1)) {
      if (typeof o[p] !== 'object' || o[p] === null) o[p] = {};
      o = o[p];
    }
    o[parts[parts.length - 1]] = value;
  }

  class FieldProblem extends Error {
    constructor(name, message) { super(message); this.name_ = name; }
  }

  function fieldValue(input) {
    const kind = input.dataset.kind;
    if (input.type === 'checkbox' || kind === 'bool') return input.checked;
    let v = input.value;
    if (kind === 'number') return v.trim() === '' ? null : Number(v);
    if (kind === 'lines') return v.split('\n').map((s) => s.trim()).filter(Boolean);
    if (kind === 'json') {
      if (!v.trim()) return null;
      try { return JSON.parse(v); } catch (e) { throw new FieldProblem(input.name, `This is not valid JSON: ${e.message}`); }
    }
    if (v.trim() === '' && !input.required) return input.name.includes('.') ? '' : null;
    return v;
  }

  // Settings edited on a page are laid over the stored configuration, which PATCH replaces whole.
  function deepMerge(base, over) {
    for (const [k, v] of Object.entries(over)) {
      if (v && typeof v === 'object' && !Array.isArray(v) && base[k] && typeof base[k] === 'object' && !Array.isArray(base[k])) deepMerge(base[k], v);
      else if (v === '' && !(k in base)) continue;
      else base[k] = v;
    }
    return base;
  }

  function serialize(form) {
    const out = {};
    const lists = new Set();
    for (const input of form.elements) {
      if (!input.name || input.disabled || input.name.startsWith('kb_')) continue;
      if (['submit', 'button', 'file', 'reset'].includes(input.type)) continue;
      if (input.closest('[hidden]')) continue; // hidden conditional fields are not answers
      if (input.dataset.kind === 'list') {
        if (!lists.has(input.name)) { setPath(out, input.name, []); lists.add(input.name); }
        if (input.checked) getPath(out, input.name).push(input.value);
        continue;
      }
      if (input.type === 'radio') {
        if (input.checked) setPath(out, input.name, input.value);
        continue;
      }
      const v = fieldValue(input);
      if (v === null && input.type === 'password') continue; // empty secret = keep
      setPath(out, input.name, v);
    }
    if (form.dataset.baseConfig && out.config) out.config = deepMerge(JSON.parse(form.dataset.baseConfig), out.config);
    const kb = $('[data-kb-block]', form);
    if (kb && !kb.closest('[hidden]')) {
      const mode = $('input[name="kb_mode"]:checked', kb)?.value;
      const urls = ($('[name="kb_urls"]', kb)?.value || '').split('\n').map((s) => s.trim()).filter(Boolean);
      if (mode === 'skip') out.knowledge_base = { mode: 'skip' };
      else if (mode === 'create_new') out.knowledge_base = { mode, name: $('[name="kb_name"]', kb).value, urls };
      else if (mode === 'existing') out.knowledge_base = { mode, knowledge_base_id: $('[name="kb_id"]', kb).value, urls };
    }
    return out;
  }

  // ---------- errors ----------
  function clearErrors(root) {
    $$('.field-error[data-generated]', root).forEach((n) => n.remove());
    $$('.field-error', root).forEach((n) => { if (!n.closest('td')) n.textContent = ''; });
    $$('[aria-invalid]', root).forEach((n) => n.removeAttribute('aria-invalid'));
    $$('.form-error', root).forEach((n) => { n.textContent = ''; });
    $$('[data-error-list]', root).forEach((n) => n.replaceChildren());
  }

  function slotFor(form, name) {
    const parts = name.split('.');
    for (let i = parts.length; i > 0; i--) {
      const n = parts.slice(0, i).join('.');
      const slot = form.querySelector(`[data-error-for="${CSS.escape(n)}"]`);
      if (slot) return { slot, input: form.querySelector(`[name="${CSS.escape(n)}"]`) };
      const input = form.querySelector(`[name="${CSS.escape(n)}"]`);
      if (input) {
        const anchor = input.closest('label') || input;
        const p = el('p', { class: 'field-error', 'data-generated': true, role: 'alert' });
        anchor.after(p);
        return { slot: p, input };
      }
    }
    return null;
  }

  function showErrors(form, err) {
    clearErrors(form);
    const errors = err.problem?.errors || [];
    const unplaced = [];
    for (const e of errors) {
      const name = (e.path || '').replace(/^\//, '').split('/').filter(Boolean).join('.');
      const found = name && !form.dataset.bodyField ? slotFor(form, name) : null;
      if (found) {
        found.slot.textContent = found.slot.textContent ? `${found.slot.textContent} ${e.message}` : e.message;
        if (found.input) found.input.setAttribute('aria-invalid', 'true');
      } else unplaced.push(`${e.path || '(body)'}: ${e.message}`);
    }
    const list = $('[data-error-list]', form);
    if (list && unplaced.length) list.replaceChildren(...unplaced.map((t) => el('li', { text: t })));
    const box = $('.form-error', form);
    if (box) {
      if (errors.length && !unplaced.length) box.textContent = 'Please fix the fields marked above.';
      else if (unplaced.length && !list) box.textContent = unplaced.join(' · ');
      else if (unplaced.length) box.textContent = 'The configuration has errors (listed above).';
      else box.textContent = err.message;
      offerUpgrade(box, err);
    }
    const first = $('[aria-invalid="true"]', form);
    if (first) first.focus();
  }

  // ---------- after success ----------
  function fill(template, data) {
    return template.replace(/\{([a-z_.]+)\}/g, (_, path) => encodeURIComponent(getPath(data || {}, path) ?? ''));
  }

  function then(spec, data, form) {
    for (const step of (spec || 'reload').split('|')) {
      const [kind, ...rest] = step.split(':');
      const arg = rest.join(':');
      if (kind === 'reload') { location.reload(); return; }
      if (kind === 'redirect') { location.assign(fill(arg, data)); return; }
      if (kind === 'go') { const u = getPath(data || {}, arg); if (typeof u === 'string' && /^https?:\/\//.test(u)) location.assign(u); return; }
      if (kind === 'message') toast(arg);
      if (kind === 'replace') { if (form) form.hidden = true; const t = $(arg); if (t) t.hidden = false; }
      if (kind === 'secret' && form) {
        const box = $('[data-secret-box]', form);
        $('[data-secret]', form).textContent = data.secret;
        box.hidden = false;
      }
    }
  }

  async function submitApiForm(form, ev) {
    ev.preventDefault();
    const button = $('button[type="submit"]', form);
    let body;
    try {
      body = serialize(form);
      if (form.dataset.bodyField) body = body[form.dataset.bodyField];
    } catch (e) {
      if (e instanceof FieldProblem) {
        showErrors(form, new ApiError(422, { errors: [{ path: `/${e.name_}`, message: e.message }], detail: e.message }));
        if (form.dataset.bodyField) $('.form-error', form).textContent = e.message;
        return;
      }
      throw e;
    }
    if (button) button.disabled = true;
    try {
      const data = await api(form.dataset.method || 'POST', form.dataset.api, body);
      clearErrors(form);
      then(form.dataset.then, data, form);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.status === 409 && form.dataset.method === 'PATCH') {
        err.problem.detail = `${err.message} Someone else changed this meanwhile: reload to see their version.`;
        err.message = err.problem.detail;
      }
      showErrors(form, err);
    } finally {
      if (button) button.disabled = false;
    }
  }

  document.addEventListener('submit', (ev) => {
    const form = ev.target;
    if (form.matches('form[data-api]')) submitApiForm(form, ev);
  });

  document.addEventListener('click', async (ev) => {
    const b = ev.target.closest('[data-api-click]');
    if (!b) return;
    if (b.dataset.confirm && !confirm(b.dataset.confirm)) return;
    b.disabled = true;
    try {
      const data = await api(b.dataset.method || 'POST', b.dataset.apiClick);
      then(b.dataset.then, data);
    } catch (err) {
      toast(err.message);
    } finally {
      b.disabled = false;
    }
  });

  // ---------- chrome ----------
  function initChrome() {
    $('[data-logout]')?.addEventListener('click', async () => {
      try { await api('POST', '/web/logout'); } catch { /* signed out already */ }
      location.assign('/login');
    });
    $('[data-workspace-switch]')?.addEventListener('change', async (ev) => {
      await api('POST', '/web/workspace', { workspace_id: ev.target.value });
      location.assign('/team');
    });
    for (const s of $$('[data-role-select]')) {
      s.addEventListener('change', async () => {
        try { await api('PATCH', s.dataset.roleSelect, { role: s.value }); toast('Role changed.'); } catch (err) { toast(err.message); location.reload(); }
      });
    }
    for (const section of $$('[data-needs-capability]')) {
      const box = $(`input[name="enabled_capabilities"][value="${CSS.escape(section.dataset.needsCapability)}"]`);
      box?.addEventListener('change', () => { section.hidden = !box.checked; });
    }
    for (const n of $$('[data-origin-text]')) n.textContent = location.origin + n.textContent;
    for (const n of $$('[data-widget-snippet]')) {
      n.textContent = `<script src="${location.origin}/widget.js" data-agent="${n.dataset.publicId}" async></script>`;
    }
  }

  // ---------- onboarding ----------
  function answerOf(form, name) {
    const inputs = $$(`[name="${CSS.escape(name)}"]`, form);
    if (!inputs.length) return { known: false };
    const first = inputs[0];
    if (first.dataset.kind === 'list') return { known: true, value: inputs.filter((i) => i.checked).map((i) => i.value) };
    if (first.type === 'radio') return { known: true, value: inputs.find((i) => i.checked)?.value ?? null };
    if (first.type === 'checkbox') return { known: true, value: first.checked };
    const v = first.value;
    if (first.dataset.kind === 'number') return { known: true, value: v === '' ? null : Number(v) };
    return { known: true, value: v.trim() === '' ? null : v };
  }
  const isEmpty = (v) => v === null || v === undefined || (typeof v === 'string' && !v.trim())
    || (Array.isArray(v) && !v.length) || (typeof v === 'object' && !Array.isArray(v) && !Object.keys(v).length);
  const eq = (a, b) => (typeof a === 'number' || typeof b === 'number' ? Number(a) === Number(b) : a === b);
  const containsOrEq = (answer, expected) => (Array.isArray(answer) ? answer.some((i) => eq(i, expected)) : eq(answer, expected));
  function matches(expected, answer) {
    if (expected === null) return isEmpty(answer);
    if (Array.isArray(expected)) return !isEmpty(answer) && expected.some((e) => containsOrEq(answer, e));
    if (typeof expected === 'object') return !matches(expected.not, answer);
    return answer !== null && answer !== undefined && containsOrEq(answer, expected);
  }
  // undefined: the condition reads a field of another step (the server's verdict stands).
  function holds(form, cond) {
    let result = true;
    for (const [name, expected] of Object.entries(cond)) {
      const a = answerOf(form, name);
      if (!a.known) return undefined;
      result = result && matches(expected, a.value);
    }
    return result;
  }
  function applyConditions(form) {
    for (const f of $$('[data-field]', form)) {
      const show = f.dataset.showIf ? holds(form, JSON.parse(f.dataset.showIf)) : true;
      const hide = f.dataset.hideIf ? holds(form, JSON.parse(f.dataset.hideIf)) : false;
      if (show !== undefined && hide !== undefined) f.hidden = !show || hide;
      if (f.dataset.requiredIf) {
        const req = holds(form, JSON.parse(f.dataset.requiredIf));
        if (req !== undefined) f.classList.toggle('is-required', req || f.hasAttribute('data-required'));
      }
    }
  }

  function initOnboarding() {
    for (const b of $$('[data-start-onboarding]')) {
      b.addEventListener('click', async () => {
        b.disabled = true;
        try {
          const s = await api('POST', '/api/v1/onboarding', { template: b.dataset.startOnboarding });
          location.assign(`/onboarding/${s.id}`);
        } catch (err) {
          $('#start-error').textContent = err.message;
          offerUpgrade($('#start-error'), err);
          b.disabled = false;
        }
      });
    }
    const box = $('[data-onboarding]');
    if (!box) return;
    const id = box.dataset.onboarding;
    if (box.tagName === 'FORM') {
      applyConditions(box);
      box.addEventListener('input', () => applyConditions(box));
      box.addEventListener('change', () => applyConditions(box));
      box.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const button = $('button[type="submit"]', box);
        button.disabled = true;
        try {
          await api('PUT', `/api/v1/onboarding/${id}/steps/${encodeURIComponent(box.dataset.step)}`, serialize(box));
          location.assign(location.pathname);
        } catch (err) {
          showErrors(box, err);
          button.disabled = false;
        }
      });
    }
    $('[data-onboarding-back]', box)?.addEventListener('click', async () => {
      try { await api('POST', `/api/v1/onboarding/${id}/back`); location.assign(location.pathname); } catch (err) { $('.form-error', box).textContent = err.message; }
    });
    $('[data-onboarding-abandon]', box)?.addEventListener('click', async () => {
      if (!confirm('Cancel this setup? Your answers will be discarded.')) return;
      try { await api('POST', `/api/v1/onboarding/${id}/abandon`); location.assign('/team'); } catch (err) { $('.form-error', box).textContent = err.message; }
    });
    $('[data-onboarding-complete]', box)?.addEventListener('click', async (ev) => {
      ev.target.disabled = true;
      try {
        const done = await api('POST', `/api/v1/onboarding/${id}/complete`);
        try { sessionStorage.setItem(`ef_new_key_${done.agent.id}`, done.api_key.secret); } catch { /* private mode */ }
        location.assign(`/team/${done.agent.id}?setup=1`);
      } catch (err) {
        $('.form-error', box).textContent = err.message;
        ev.target.disabled = false;
      }
    });
  }

  function initWelcome() {
    const box = $('[data-new-key]');
    if (!box) return;
    const agent = location.pathname.split('/')[2];
    let secret = null;
    try { secret = sessionStorage.getItem(`ef_new_key_${agent}`); sessionStorage.removeItem(`ef_new_key_${agent}`); } catch { /* ignore */ }
    if (secret) { $('[data-new-key-value]', box).textContent = secret; box.hidden = false; }
  }

  // ---------- chat ----------
  function citationNode(c) {
    const summary = el('summary', { text: `[${c.index}] ${c.document_title}${c.page ? `, p. ${c.page}` : ''}${c.heading ? ` · ${c.heading}` : ''}` });
    const d = el('details', { class: 'citation' }, summary, el('blockquote', { text: c.excerpt }));
    if (c.source_url && /^https?:\/\//.test(c.source_url)) d.append(el('a', { href: c.source_url, target: '_blank', rel: 'noopener', text: 'Open source' }));
    return d;
  }

  async function readSse(res, onEvent) {
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const raw = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let name = 'message';
        const data = [];
        for (const line of raw.split('\n')) {
          if (line.startsWith('event:')) name = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        if (!data.length) continue;
        let payload;
        try { payload = JSON.parse(data.join('\n')); } catch { continue; }
        onEvent(name, payload);
      }
    }
  }

  function initChat() {
    const chat = $('[data-chat]');
    if (!chat) return;
    const list = $('[data-messages]', chat);
    const form = $('[data-composer]', chat);
    const input = $('textarea', form);
    const errorBox = $('[data-chat-error]', chat);
    const attachInput = $('[data-attach]', chat);
    const attachedList = $('[data-attached]', chat);
    const showAttached = () => attachedList.replaceChildren(...Array.from(attachInput.files).map((f) => el('li', { text: `📎 ${f.name}` })));
    attachInput.addEventListener('change', showAttached);
    const readFile = (f) => new Promise((resolve, reject) => {
      const r = new FileReader();
      r.onload = () => resolve({ filename: f.name, content_type: f.type || null, data: String(r.result).split(',')[1] || '' });
      r.onerror = () => reject(new Error(`${f.name} could not be read`));
      r.readAsDataURL(f);
    });
    const prompt = new URLSearchParams(location.search).get('prompt');
    if (prompt) input.value = prompt;
    list.scrollTop = list.scrollHeight;

    function bubble(role, text) {
      const b = el('div', { class: 'bubble', text });
      const li = el('li', { class: `msg msg-${role}` }, b);
      list.append(li);
      list.scrollTop = list.scrollHeight;
      return li;
    }

    async function stream(url, body, li) {
      const b = $('.bubble', li);
      const activity = el('ul', { class: 'activity', 'aria-label': 'What the assistant is doing' });
      li.prepend(activity);
      b.classList.add('streaming');
      const tools = new Map();
      let res;
      try {
        res = await fetch(url, {
          method: 'POST',
          credentials: 'same-origin',
          headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream', 'X-CSRF-Token': csrf() },
          body: JSON.stringify(body),
        });
      } catch {
        throw new Error('The server could not be reached. Your message was not sent; try again.');
      }
      if (!res.ok) {
        let p = {};
        try { p = await res.json(); } catch { /* not JSON */ }
        throw new ApiError(res.status, { detail: `The request failed (${res.status}).`, ...p });
      }
      let failed = null;
      await readSse(res, (name, e) => {
        switch (name) {
          case 'run.started':
            if (!chat.dataset.conversation) {
              chat.dataset.conversation = e.conversation_id;
              history.replaceState(null, '', `${location.pathname}?c=${encodeURIComponent(e.conversation_id)}`);
            }
            break;
          case 'message.delta':
            b.textContent += e.delta;
            break;
          case 'tool.started': {
            const item = el('li', { class: 'tool running', text: `${e.tool.replace(/_/g, ' ')}…` });
            tools.set(e.call_id, item);
            activity.append(item);
            break;
          }
          case 'tool.completed': {
            const item = tools.get(e.call_id) || activity.appendChild(el('li'));
            item.className = `tool ${e.ok ? 'done' : 'failed'}`;
            item.textContent = `${e.tool.replace(/_/g, ' ')} — ${e.summary} (${e.latency_ms} ms)`;
            break;
          }
          case 'action.pending':
            li.after(actionNode(e.id, e.tool));
            break;
          case 'message.completed':
            b.textContent = e.content;
            if (e.citations?.length) li.append(el('div', { class: 'citations', 'aria-label': 'Sources' }, ...e.citations.map(citationNode)));
            break;
          case 'run.failed':
            failed = e.message;
            break;
          default:
        }
        list.scrollTop = list.scrollHeight;
      });
      b.classList.remove('streaming');
      if (failed) throw new Error(failed);
    }

    function actionNode(id, tool) {
      const approve = el('button', { type: 'button', class: 'primary', 'data-decide': 'approve', text: 'Approve' });
      const reject = el('button', { type: 'button', 'data-decide': 'reject', text: 'Reject' });
      const bubbleNode = el('div', { class: 'bubble' }, `The assistant wants to run `, el('strong', { text: tool }), '.', el('div', { class: 'actions' }, approve, reject));
      return el('li', { class: 'msg msg-action', 'data-action-id': id }, bubbleNode);
    }

    list.addEventListener('click', async (ev) => {
      const b = ev.target.closest('[data-decide]');
      if (!b) return;
      const item = b.closest('[data-action-id]');
      $$('button', item).forEach((x) => { x.disabled = true; });
      const approve = b.dataset.decide === 'approve';
      $('.actions', item).replaceChildren(el('span', { class: 'muted', text: approve ? 'Approved' : 'Rejected' }));
      const li = bubble('assistant', '');
      try {
        await stream(`/api/v1/conversations/${chat.dataset.conversation}/actions/${item.dataset.actionId}`, { approve }, li);
      } catch (err) {
        errorBox.textContent = err.message;
      }
    });

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const message = input.value.trim();
      if (!message) return;
      errorBox.textContent = '';
      const button = $('button', form);
      button.disabled = true;
      const files = Array.from(attachInput.files);
      let attachments = [];
      try { attachments = await Promise.all(files.map(readFile)); } catch (err) { errorBox.textContent = err.message; button.disabled = false; return; }
      for (const f of files) bubble('user', `📎 ${f.name}`).querySelector('.bubble').classList.add('attachment');
      bubble('user', message);
      input.value = '';
      const li = bubble('assistant', '');
      const body = { message };
      if (attachments.length) body.attachments = attachments;
      if (chat.dataset.conversation) body.conversation_id = chat.dataset.conversation;
      try {
        await stream(`/api/v1/agents/${chat.dataset.agent}/chat`, body, li);
        attachInput.value = '';
        showAttached();
      } catch (err) {
        errorBox.textContent = err.message;
        offerUpgrade(errorBox, err);
        if (!$('.bubble', li).textContent) li.remove();
        input.value = message; // keep what the user typed
      } finally {
        button.disabled = false;
        input.focus();
      }
    });
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey) { ev.preventDefault(); form.requestSubmit(); }
    });
  }

  // ---------- knowledge ----------
  function initKnowledge() {
    const zone = $('[data-upload]');
    if (zone) {
      const input = $('[data-upload-input]', zone);
      const bar = $('[data-upload-progress]', zone);
      const error = $('[data-upload-error]', zone);
      const upload = (files) => {
        if (!files.length) return;
        const data = new FormData();
        for (const f of files) data.append('file', f, f.name);
        const xhr = new XMLHttpRequest();
        xhr.open('POST', zone.dataset.upload);
        xhr.setRequestHeader('X-CSRF-Token', csrf());
        xhr.setRequestHeader('Accept', 'application/json');
        bar.hidden = false;
        bar.value = 0;
        error.textContent = '';
        xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 100); };
        xhr.onload = () => {
          if (xhr.status >= 200 && xhr.status < 300) { bar.value = 100; location.reload(); return; }
          let p = {};
          try { p = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
          error.textContent = p.detail || `Upload failed (${xhr.status}).`;
          offerUpgrade(error, { status: xhr.status, problem: p });
          bar.hidden = true;
        };
        xhr.onerror = () => { error.textContent = 'The upload was interrupted. Check your connection and try again.'; bar.hidden = true; };
        xhr.send(data);
      };
      input.addEventListener('change', () => upload(Array.from(input.files)));
      ['dragenter', 'dragover'].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.add('over'); }));
      ['dragleave', 'drop'].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.remove('over'); }));
      zone.addEventListener('drop', (e) => upload(Array.from(e.dataTransfer.files)));
      zone.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); input.click(); } });
    }

    const table = $('[data-documents]');
    if (table) {
      const kb = table.dataset.documents;
      const busy = () => $$('tr[data-doc-status]', table).some((r) => ['pending', 'processing'].includes(r.dataset.docStatus));
      const poll = async () => {
        try {
          const page = await api('GET', `/api/v1/knowledge-bases/${kb}/documents?limit=200`);
          const known = new Set($$('tr[data-doc-id]', table).map((r) => r.dataset.docId));
          if (page.data.some((d) => !known.has(d.id))) { location.reload(); return; }
          for (const d of page.data) {
            const row = $(`tr[data-doc-id="${CSS.escape(d.id)}"]`, table);
            if (!row || row.dataset.docStatus === d.status) continue;
            if (d.status === 'failed') { location.reload(); return; }
            row.dataset.docStatus = d.status;
            poll.changed = true;
            const badge = $('[data-status]', row);
            badge.textContent = d.status;
            badge.className = `badge badge-${d.status}`;
            $('[data-chunks]', row).textContent = d.chunk_count;
          }
        } catch { /* retry on the next tick */ }
        if (busy()) setTimeout(poll, 1000);
        else if (poll.changed) location.reload(); // refresh titles and figures once
      };
      if (busy()) setTimeout(poll, 800);
    }

    const search = $('[data-search]');
    if (search) {
      search.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const out = $('[data-search-results]');
        const query = search.elements.query.value.trim();
        if (!query) return;
        try {
          const r = await api('POST', search.dataset.search, { query, top_k: 5 });
          out.replaceChildren(...(r.results.length ? r.results.map((hit) => el('li', {},
            el('strong', { text: hit.metadata.document_title }),
            el('span', { class: 'muted small', text: ` · score ${hit.score.toFixed(3)}${hit.metadata.page ? ` · p. ${hit.metadata.page}` : ''}` }),
            el('blockquote', { text: hit.content }))) : [el('li', { class: 'muted', text: 'Nothing matched.' })]));
        } catch (err) {
          out.replaceChildren(el('li', { class: 'field-error', text: err.message }));
        }
      });
    }
  }

  // Forms whose parts show by another field's answer (data-show-if), outside onboarding.
  function initConditional() {
    for (const form of $$('form[data-conditional]')) {
      applyConditions(form);
      form.addEventListener('change', () => applyConditions(form));
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    initChrome();
    initConditional();
    initOnboarding();
    initWelcome();
    initChat();
    initKnowledge();
  });
})();
