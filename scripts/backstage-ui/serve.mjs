// Serves a built Backstage frontend (dist/) the way Backstage's app-backend does, for
// scripts/check-backstage-ui.sh: files as they are, hashed ones (static/*) cached for long,
// anything else (a route of the SPA) answered with index.html, never cached. Loopback only.
// USE: node serve.mjs <dist dir>   prints {"url":"http://127.0.0.1:<port>"} once listening;
//      exits when its stdin closes (spawn it with a held-open stdin), or on SIGTERM/SIGINT.
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';

const root = normalize(process.argv[2] ?? 'dist');
const types = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.css': 'text/css', '.json': 'application/json', '.svg': 'image/svg+xml', '.png': 'image/png',
  '.ico': 'image/x-icon', '.woff': 'font/woff', '.woff2': 'font/woff2', '.txt': 'text/plain',
  '.map': 'application/json', '.ttf': 'font/ttf',
};
const isFile = (path) => { try { return statSync(path).isFile(); } catch { return false; } };
const server = createServer((req, res) => {
  const pathname = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  let file = normalize(join(root, pathname));
  if (!file.startsWith(root + sep) || !isFile(file)) file = join(root, 'index.html');
  const hashed = file.startsWith(join(root, 'static') + sep);
  process.stderr.write(`[serve.mjs] ${req.method} ${req.url} -> ${file.slice(root.length)}\n`);
  res.writeHead(200, {
    'content-type': types[extname(file)] ?? 'application/octet-stream',
    'cache-control': hashed ? 'public, max-age=1209600' : 'no-store',
  });
  if (req.method === 'HEAD') res.end(); else createReadStream(file).pipe(res);
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` })}\n`);
});
const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
