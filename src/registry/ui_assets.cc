// The web catalog's page, script and style (web_ui.h), compiled in.
// The script builds every element with createElement and textContent:
// nothing from the registry is ever parsed as HTML.
#include "registry/web_ui.h"

namespace ocib::registry {

const char* const kUiIndexHtml = R"UI(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ocireg</title>
<link rel="stylesheet" href="/ui/app.css">
<script src="/ui/app.js" defer></script>
</head>
<body>
<header>
  <a id="home" href="#/">ocireg</a>
  <span id="who"></span>
</header>
<main id="main"><p class="muted">Loading…</p></main>
</body>
</html>
)UI";

const char* const kUiAppCss = R"UI(
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: #1d2330; background: #f6f7f9; }
header { display: flex; justify-content: space-between; align-items: center;
  padding: 10px 24px; background: #1d2330; color: #fff; }
header a { color: #fff; font-weight: 600; text-decoration: none; font-size: 16px; }
header button { margin-left: 8px; }
main { max-width: 1100px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 20px; margin: 8px 0 12px; word-break: break-all; }
h2 { font-size: 15px; margin: 22px 0 8px; }
a { color: #2458c6; }
table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid #dde1e8; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #eceef2; vertical-align: top; }
th { background: #eef1f5; font-weight: 600; font-size: 12px; text-transform: uppercase; color: #4a5568; }
td.num { text-align: right; white-space: nowrap; }
code, .mono { font-family: ui-monospace, monospace; font-size: 12.5px; word-break: break-all; }
ul.repos { list-style: none; padding: 0; margin: 0; background: #fff; border: 1px solid #dde1e8; }
ul.repos li { padding: 8px 12px; border-bottom: 1px solid #eceef2; }
input[type=search], input[type=text], input[type=password] { padding: 6px 8px;
  border: 1px solid #c4cad4; border-radius: 4px; font: inherit; }
input#search { width: 100%; margin-bottom: 12px; }
button { padding: 5px 12px; border: 1px solid #c4cad4; border-radius: 4px; background: #fff;
  font: inherit; cursor: pointer; }
.pull { display: flex; gap: 8px; margin: 8px 0 16px; }
.pull input { flex: 1; font-family: ui-monospace, monospace; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; background: #fff;
  border: 1px solid #dde1e8; padding: 10px 14px; margin: 0; }
dt { font-weight: 600; color: #4a5568; }
dd { margin: 0; }
.muted { color: #6b7380; }
.error { color: #b42318; }
form#login { display: grid; gap: 8px; max-width: 320px; background: #fff;
  border: 1px solid #dde1e8; padding: 16px; }
)UI";

const char* const kUiAppJs = R"UI('use strict';
// The catalog: #/ (repositories, ?q= search), #/r/NAME (tags),
// #/i/NAME@DIGEST (an image). Every value is set with textContent.
const main = document.getElementById('main');
const authKey = 'ocireg-auth';

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'text') e.textContent = v;
    else if (k === 'onclick' || k === 'oninput' || k === 'onsubmit') e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}
function human(n) {
  if (n == null || n < 0) return '';
  const u = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(n < 10 ? 2 : 1) : n) + ' ' + u[i];
}
function ago(iso) {
  if (!iso) return '';
  const s = (Date.now() - Date.parse(iso)) / 1000;
  if (!isFinite(s)) return iso;
  const units = [['year', 31536000], ['month', 2592000], ['day', 86400],
                 ['hour', 3600], ['minute', 60]];
  for (const [name, secs] of units) {
    const n = Math.floor(s / secs);
    if (n >= 1) return n + ' ' + name + (n > 1 ? 's' : '') + ' ago';
  }
  return 'less than a minute ago';
}
function short(d) { return d ? d.replace(/^sha256:/, '').slice(0, 12) : ''; }
function table(id, heads, rows) {
  const t = el('table', {id});
  t.append(el('thead', {}, el('tr', {}, ...heads.map(h => el('th', {text: h})))));
  const body = el('tbody');
  for (const r of rows) body.append(el('tr', {}, ...r.map(c =>
    c instanceof Node ? el('td', {}, c)
      : (typeof c === 'number' ? el('td', {class: 'num', text: human(c)}) : el('td', {text: c == null ? '' : String(c)})))));
  t.append(body);
  return t;
}

async function api(path) {
  const headers = {};
  const a = sessionStorage.getItem(authKey);
  if (a) headers['Authorization'] = a;
  const r = await fetch('/ui/api/' + path, {headers, credentials: 'omit'});
  const j = await r.json().catch(() => ({}));
  if (r.status === 401) {
    // Only the credentials this request used: a newer login may be set.
    if (sessionStorage.getItem(authKey) === a) sessionStorage.removeItem(authKey);
    throw {login: true, tried: !!a, message: j.error};
  }
  if (!r.ok) throw {message: j.error || ('HTTP ' + r.status)};
  return j;
}

function setWho(user, auth) {
  const who = document.getElementById('who');
  who.replaceChildren();
  if (user) {
    who.append('signed in as ', el('b', {text: user}),
      el('button', {id: 'logout', text: 'Log out', onclick: () => {
        sessionStorage.removeItem(authKey); go('#/'); }}));
  } else if (auth) {
    who.append(el('a', {href: '#/login', id: 'login-link', text: 'Log in'}));
  }
}

function showLogin(message) {
  const user = el('input', {type: 'text', id: 'user', autocomplete: 'username', placeholder: 'user'});
  const pass = el('input', {type: 'password', id: 'password', autocomplete: 'current-password', placeholder: 'password'});
  const form = el('form', {id: 'login'}, el('h1', {text: 'Log in'}),
    message ? el('p', {class: 'error', id: 'login-error', text: message}) : null,
    user, pass, el('button', {type: 'submit', id: 'login-button', text: 'Log in'}));
  form.onsubmit = (ev) => {
    ev.preventDefault();
    const bytes = new TextEncoder().encode(user.value + ':' + pass.value);
    sessionStorage.setItem(authKey, 'Basic ' + btoa(String.fromCharCode(...bytes)));
    go('#/');
  };
  main.replaceChildren(form);
}

async function repositories(q) {
  const search = el('input', {type: 'search', id: 'search', placeholder: 'Search repositories', value: q});
  const list = el('ul', {class: 'repos', id: 'repos'});
  const more = el('button', {id: 'more', text: 'More'});
  const count = el('p', {class: 'muted', id: 'count'});
  main.replaceChildren(el('h1', {text: 'Repositories'}), search, count, list, more);
  let timer;
  search.oninput = () => {
    clearTimeout(timer);
    timer = setTimeout(() => { history.replaceState(null, '', '#/?q=' + encodeURIComponent(search.value)); load(true); }, 150);
  };
  let next = null, shown = 0, loads = 0;
  async function load(reset) {
    const mine = ++loads;  // a newer search replaces this one's answer
    const p = 'repositories?n=50&q=' + encodeURIComponent(search.value) + (!reset && next ? '&last=' + encodeURIComponent(next) : '');
    const j = await api(p);
    if (mine !== loads) return;
    if (reset) { list.replaceChildren(); next = null; shown = 0; }
    setWho(j.user, j.auth);
    for (const name of j.repositories) {
      list.append(el('li', {}, el('a', {href: '#/r/' + encodeURIComponent(name), class: 'repo', text: name})));
      shown++;
    }
    // Auth on and nothing visible anonymously: ask for a login.
    if (reset && j.auth && !j.user && !j.repositories.length && !search.value) return showLogin('');
    next = j.next;
    more.hidden = !next;
    count.textContent = shown + (next ? '+' : '') + ' repositor' + (shown === 1 ? 'y' : 'ies');
    if (shown === 0) list.append(el('li', {class: 'muted', text: 'No repositories' + (search.value ? ' match' : '')}));
  }
  more.onclick = () => load(false);
  await load(true);
}

async function repository(name) {
  const j = await api('repository?name=' + encodeURIComponent(name));
  const host = location.host;
  const first = j.tags.length ? j.tags[0].tag : 'latest';
  const pull = el('input', {type: 'text', id: 'pull', readonly: 'readonly', value: 'docker pull ' + host + '/' + name + ':' + first});
  const copy = el('button', {id: 'copy', text: 'Copy', onclick: () => {
    pull.select();
    if (navigator.clipboard) navigator.clipboard.writeText(pull.value).catch(() => {});
    else document.execCommand('copy');
  }});
  const rows = j.tags.map(t => [
    el('a', {href: '#/i/' + encodeURIComponent(name) + '@' + t.digest, class: 'tag', text: t.tag}),
    el('code', {text: short(t.digest)}),
    t.size == null ? '' : t.size,
    (t.platforms || []).join(', '),
    t.pushed ? ago(t.pushed) : '']);
  main.replaceChildren(el('p', {}, el('a', {href: '#/', text: 'Repositories'})),
    el('h1', {id: 'repo-name', text: name}),
    el('div', {class: 'pull'}, pull, copy),
    el('h2', {text: 'Tags (' + j.tagCount + (j.truncated ? ', the newest ' + j.tags.length + ' shown' : '') + ')'}),
    table('tags', ['Tag', 'Digest', 'Size', 'Platforms', 'Pushed'], rows));
}

async function image(name, digest) {
  const j = await api('image?name=' + encodeURIComponent(name) + '&digest=' + encodeURIComponent(digest));
  const parts = [el('p', {}, el('a', {href: '#/', text: 'Repositories'}), ' / ',
    el('a', {href: '#/r/' + encodeURIComponent(name), text: name})),
    el('h1', {id: 'image-name', text: name + '@' + digest}),
    el('p', {class: 'muted', id: 'media-type', text: j.mediaType + ' · ' + human(j.size) +
      (j.tags.length ? ' · tags: ' + j.tags.join(', ') : '')})];
  if (j.isIndex) {
    parts.push(el('h2', {text: 'Platforms'}), table('platforms', ['Platform', 'Digest', 'Media type'],
      j.platforms.map(p => [p.platform || '(none)',
        p.present ? el('a', {href: '#/i/' + encodeURIComponent(name) + '@' + p.digest, text: short(p.digest)}) : el('code', {text: short(p.digest)}),
        p.mediaType])));
  }
  if (j.config) {
    const c = j.config;
    const dl = el('dl', {id: 'config'});
    const add = (k, v) => { if (v != null && v !== '' && !(Array.isArray(v) && !v.length)) dl.append(el('dt', {text: k}), el('dd', {class: 'mono', text: Array.isArray(v) ? v.join(' ') : v})); };
    add('Platform', c.os + '/' + c.architecture);
    add('Created', c.created);
    add('Entrypoint', c.entrypoint.length ? JSON.stringify(c.entrypoint) : '');
    add('Cmd', c.cmd.length ? JSON.stringify(c.cmd) : '');
    add('WorkingDir', c.workingDir);
    add('User', c.user);
    add('Exposed ports', c.exposedPorts);
    for (const e of c.env) dl.append(el('dt', {text: 'Env'}), el('dd', {class: 'mono env', text: e}));
    for (const [k, v] of Object.entries(c.labels)) dl.append(el('dt', {text: 'Label'}), el('dd', {class: 'mono label', text: k + '=' + v}));
    parts.push(el('h2', {text: 'Config'}), dl);
  }
  if (j.layers.length) {
    parts.push(el('h2', {text: 'Layers (' + j.layers.length + ')'}),
      table('layers', ['#', 'Digest', 'Media type', 'Size'], j.layers.map((l, i) => [String(i + 1), el('code', {text: l.digest}), l.mediaType, l.size])));
  }
  if (j.history) {
    parts.push(el('h2', {text: 'History'}),
      table('history', ['Created', 'Created by', 'Size', 'Comment'],
        j.history.map(h => [ago(h.created), el('code', {text: h.createdBy}), h.emptyLayer ? '0 B' : h.size, h.comment])));
  }
  parts.push(el('h2', {text: 'Referrers (' + j.referrers.length + ')'}),
    table('referrers', ['Artifact type', 'Digest', 'Size'], j.referrers.map(r => [r.artifactType,
      el('a', {href: '#/i/' + encodeURIComponent(name) + '@' + r.digest, text: short(r.digest)}), r.size])));
  main.replaceChildren(...parts);
}

// Shows `hash`: one route() either way (a changed hash fires hashchange).
function go(hash) {
  if (location.hash === hash) route(); else location.hash = hash;
}

let generation = 0;
async function route() {
  const mine = ++generation;
  const h = decodeURIComponent(location.hash.replace(/^#/, '')) || '/';
  try {
    if (h === '/login') { setWho('', true); return showLogin(''); }
    if (h.startsWith('/r/')) return await repository(h.slice(3));
    if (h.startsWith('/i/')) {
      const at = h.lastIndexOf('@');
      return await image(h.slice(3, at), h.slice(at + 1));
    }
    const q = h.startsWith('/?q=') ? h.slice(4) : '';
    return await repositories(q);
  } catch (e) {
    if (mine !== generation) return;  // a newer route() owns the page
    if (e && e.login) { setWho('', true); return showLogin(e.tried ? e.message : ''); }
    main.replaceChildren(el('p', {class: 'error', id: 'error', text: (e && e.message) || String(e)}));
  } finally {
    document.body.dataset.ready = '1';
  }
}
window.addEventListener('hashchange', () => { document.body.dataset.ready = ''; route(); });
route();
)UI";

}  // namespace ocib::registry
