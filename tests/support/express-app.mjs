// A stock Express 4 app used as an upstream by the canonical-path tests (tests/api/canonical_paths.rs).
// Nothing is configured away from Express's defaults: routing is case-insensitive and ignores one
// trailing slash, as in every Express app that does not opt out. Each route answers with JSON naming
// the route it matched, so a test can tell which handler a spelling of a path reached. The metrics and
// access-log tests (tests/api/metrics.rs) also use `/headers` (the request headers as received), `/cut`
// (a response that stops mid-body: the connection is destroyed) and `/drip` (a slow streamed body).
// The response-cache tests (tests/api/cache.rs) use `/cache/*`, whose query says what to answer with
// (`cc`: Cache-Control, `vary`, `cookie`: a Set-Cookie, `etag`: a fixed ETag, so Express answers a
// matching If-None-Match with 304, `cut`: a body cut off mid-way), and `/cache-log`: per URL, how often it was asked and the last
// If-None-Match it got.
// The compression tests (tests/api/compress.rs) use `/static/…`: a script, a stylesheet and a page sent
// uncompressed (Express's own `res.send`), a script the app gzipped itself, a slow streamed script
// and an event stream.
//
// Usage: node tests/support/express-app.mjs  → prints `listening <port>` once it accepts connections
// on 127.0.0.1 (port 0: the system picks one); exits when its stdin closes.
import zlib from 'node:zlib';
import express from 'express';

const app = express();

function echo(route) {
  return (req, res) => {
    res.json({ route, method: req.method, path: req.path, url: req.originalUrl });
  };
}

app.get('/overview', echo('/overview'));
app.all('/reports', echo('/reports'));
app.all('/reports/*', echo('/reports/*'));
app.all('/admin/*', echo('/admin/*'));
app.get('/headers', (req, res) => res.json({ headers: req.headers }));
app.get('/cut', (req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000000' });
  res.write('x'.repeat(1000), () => setTimeout(() => req.socket.destroy(), 100));
});
app.get('/drip', (req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  let sent = 0;
  const timer = setInterval(() => {
    if (sent++ >= 100) {
      clearInterval(timer);
      res.end();
      return;
    }
    res.write('chunk\n');
  }, 50);
  res.on('close', () => clearInterval(timer));
});
const cacheLog = new Map();
app.get('/cache/*', (req, res) => {
  const seen = cacheLog.get(req.originalUrl) ?? { hits: 0, ifNoneMatch: null };
  seen.hits += 1;
  seen.ifNoneMatch = req.get('if-none-match') ?? null;
  cacheLog.set(req.originalUrl, seen);
  const { cc, vary, cookie, etag, cut } = req.query;
  if (cut) {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100000', 'cache-control': cc });
    res.write('x'.repeat(1000), () => setTimeout(() => req.socket.destroy(), 100));
    return;
  }
  if (cc) res.set('cache-control', cc);
  if (vary) res.set('vary', vary);
  if (cookie) res.cookie('flavour', cookie);
  if (etag) {
    res.set('etag', `"${etag}"`);
    res.json({ path: req.path, etag });
    return;
  }
  res.json({ path: req.path, hits: seen.hits, user: req.get('x-portico-user') ?? null });
});
app.get('/cache-log', (req, res) => res.json(Object.fromEntries(cacheLog)));
const lines = (n, line) => Array.from({ length: n }, (_, i) => line(i)).join('');
const script = lines(400, (i) => `export function f${i}(x) { return x * ${i} + 'portico'; }\n`);
const style = lines(300, (i) => `.portico-${i} { margin: ${i}px; color: #${(i * 4099).toString(16).padStart(6, '0').slice(0, 6)}; }\n`);
const page = `<!DOCTYPE html><title>page</title>${lines(200, (i) => `<p>paragraph ${i}</p>\n`)}`;
app.get('/static/app.js', (req, res) => {
  // A strong validator, as a build tool's content hash would be.
  res.set('etag', '"app-js-v1"');
  res.type('application/javascript').send(script);
});
app.get('/static/app.css', (req, res) => res.type('text/css').send(style));
app.get('/static/page.html', (req, res) => res.type('text/html').send(page));
app.get('/static/gzipped.js', (req, res) => {
  res.set({ 'content-type': 'application/javascript', 'content-encoding': 'gzip', vary: 'accept-encoding' });
  res.end(zlib.gzipSync(script));
});
// 10 lines, one every 300 ms, chunked.
app.get('/static/slow.js', (req, res) => {
  res.writeHead(200, { 'content-type': 'application/javascript' });
  let sent = 0;
  const timer = setInterval(() => {
    res.write(`console.log('line ${sent}: ${'x'.repeat(200)}');\n`);
    if (++sent === 10) {
      clearInterval(timer);
      res.end();
    }
  }, 300);
  res.on('close', () => clearInterval(timer));
});
app.get('/static/events', (req, res) => {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.end(lines(40, (i) => `data: event ${i} ${'y'.repeat(80)}\n\n`));
});
app.use((req, res) => {
  res.status(404).json({ route: null, method: req.method, path: req.path, url: req.originalUrl });
});

const server = app.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
