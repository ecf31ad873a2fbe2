// An Express 4 upstream for `portico doctor`'s test (tests/api/doctor.rs): one page per rule the
// doctor checks, each broken in exactly one way, and one clean page. Every HTML page loads Luigi
// Client from portico (`/shell/luigi-client/…`, which pages may name root-absolute) unless the page
// is the one that must not.
//
//   /clean         a page with nothing wrong (relative assets, a redirect-free 200)
//   /broken        500
//   /no-client     a page that loads no Luigi Client
//   /absolute      a page whose script and stylesheet are root-absolute (`/static/…`)
//   /deny          X-Frame-Options: DENY
//   /cookie        Set-Cookie with Path=/
//   /moved         a redirect inside the app, to /clean (the doctor follows it)
//
// Usage: node tests/support/express-doctor.mjs  → prints `listening <port>` once it accepts
// connections on 127.0.0.1 (the system picks the port); exits when its stdin closes.
import express from 'express';

const app = express();

function page(body, { client = true } = {}) {
  const script = client ? '<script src="/shell/luigi-client/2.31.0/luigi-client.js"></script>' : '';
  return `<!doctype html><html><head><meta charset="utf-8">${script}<link rel="stylesheet" href="app.css"></head><body>${body}</body></html>`;
}

app.get('/clean', (req, res) => res.type('html').send(page('<a href="./deny">deny</a><form action="save"></form>')));
app.get('/broken', (req, res) => res.status(500).type('html').send(page('<h1>it broke</h1>')));
app.get('/no-client', (req, res) => res.type('html').send(page('<p>no handshake</p>', { client: false })));
app.get('/absolute', (req, res) =>
  res.type('html').send(page('<script src="/static/main.js"></script><link rel="stylesheet" href="/static/main.css">')),
);
app.get('/deny', (req, res) => res.set('X-Frame-Options', 'DENY').type('html').send(page('<p>framed?</p>')));
app.get('/cookie', (req, res) => res.cookie('session', 'abc', { path: '/', httpOnly: true }).type('html').send(page('<p>cookie</p>')));
app.get('/moved', (req, res) => res.redirect(302, 'clean'));
app.get('/', (req, res) => res.redirect(302, '/clean'));

const server = app.listen(0, '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
