/**
 * The `/docs` page: plain HTML and a small inline script, nothing loaded from elsewhere (the
 * gateway may run where no CDN is reachable). It asks for an API key, fetches `/openapi.json`
 * with it, and lists each operation with its parameters, request body and responses.
 */
export const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Blixard API</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #222; }
h1 { margin-bottom: .2rem; } code, pre { font: 13px ui-monospace, monospace; }
.op { border: 1px solid #ddd; border-radius: 6px; margin: .6rem 0; padding: .4rem .8rem; }
.m { display: inline-block; min-width: 4.5rem; font-weight: bold; }
.get { color: #0a6; } .post { color: #06c; } .put { color: #a60; } .delete { color: #c22; }
details pre { background: #f6f6f6; padding: .5rem; overflow: auto; max-height: 20rem; }
.muted { color: #777; } #err { color: #c22; }
</style>
</head>
<body>
<h1>Blixard API</h1>
<p class="muted">Every request needs an API key: <code>Authorization: Bearer bk_...</code> (this page and the document at <a href="openapi.json">/openapi.json</a> too, unless the gateway runs with <code>PUBLIC_DOCS=true</code>).</p>
<form id="f"><label>API key <input id="key" type="password" size="60" autocomplete="off"></label> <button>Load</button></form>
<p id="err"></p>
<div id="out"></div>
<script>
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
async function load(key) {
  const res = await fetch('openapi.json', { headers: key ? { Authorization: 'Bearer ' + key } : {} });
  const body = await res.json();
  if (!res.ok) { document.getElementById('err').textContent = body.detail || res.status; return; }
  document.getElementById('err').textContent = '';
  let html = '<p>' + esc(body.info.description) + '</p>';
  for (const tag of body.tags) {
    html += '<h2>' + esc(tag.name) + '</h2><p class="muted">' + esc(tag.description) + '</p>';
    for (const [path, item] of Object.entries(body.paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (!op.tags.includes(tag.name)) continue;
        html += '<div class="op"><span class="m ' + method + '">' + method.toUpperCase() + '</span><code>' + esc(path) + '</code> ' + esc(op.summary);
        html += '<details><summary>details</summary>' + (op.description ? '<p>' + esc(op.description) + '</p>' : '');
        html += '<pre>' + esc(JSON.stringify({ security: op.security, parameters: op.parameters, requestBody: op.requestBody, responses: op.responses }, null, 2)) + '</pre></details></div>';
      }
    }
  }
  html += '<h2>Schemas</h2><pre>' + esc(JSON.stringify(body.components.schemas, null, 2)) + '</pre>';
  document.getElementById('out').innerHTML = html;
}
document.getElementById('f').addEventListener('submit', (e) => { e.preventDefault(); load(document.getElementById('key').value.trim()); });
load('');
</script>
</body>
</html>
`;
