// A stock Express 4 app served over TLS by node's own `https` (or `http2`) server, used as an https
// upstream by tests/api/upstream_tls.rs. The test writes the certificates (made with rcgen) into a
// directory: `server.pem` (chain), `server.key`, and `ca.pem` (the CA whose client certificates are
// accepted with --mtls).
//
// Usage: node tests/support/express-https-app.mjs <dir> [--mtls] [--h2]
//   --mtls  asks for a client certificate and refuses the handshake without a valid one
//           (`requestCert: true, rejectUnauthorized: true`); answers name the certificate's subject.
//   --h2    serves with `http2.createSecureServer({ allowHTTP1: true })`: ALPN offers h2 and http/1.1.
// Prints `listening <port>` once it accepts connections on 127.0.0.1; exits when its stdin closes.
//
// Routes: GET /hello (JSON: HTTP version, ALPN, TLS client subject), GET /stream (one chunk, then the
// rest only after GET /release: a test sees the first chunk before the upstream has finished), a
// WebSocket echo on /ws (written by hand below, to stay with the packages the repository has), and a
// Backstage stand-in (below).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import http2 from 'node:http2';
import { join } from 'node:path';
import express from 'express';

const [dir, ...flags] = process.argv.slice(2);
const mtls = flags.includes('--mtls');
const h2 = flags.includes('--h2');

const tls = {
  cert: readFileSync(join(dir, 'server.pem')),
  key: readFileSync(join(dir, 'server.key')),
  ...(mtls ? { ca: readFileSync(join(dir, 'ca.pem')), requestCert: true, rejectUnauthorized: true } : {}),
};

function clientSubject(socket) {
  const peer = socket && typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : null;
  return peer && peer.subject ? peer.subject.CN || null : null;
}

function hello(req, res) {
  const socket = req.socket;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({
    httpVersion: req.httpVersion,
    alpn: socket.alpnProtocol || null,
    client: clientSubject(socket),
    host: req.headers.host || req.headers[':authority'] || null,
    forwardedProto: req.headers['x-forwarded-proto'] || null,
  }));
}

let release = null;
const released = new Promise((resolve) => { release = resolve; });

let server;
if (h2) {
  // Express 4 does not run on node's HTTP/2 compatibility API; a plain handler answers /hello.
  server = http2.createSecureServer({ ...tls, allowHTTP1: true }, (req, res) => {
    if (req.url === '/hello') return hello(req, res);
    res.statusCode = 404;
    res.end();
  });
  // An HTTP/1.1 connection to this server can still upgrade to a WebSocket.
  server.on('upgrade', websocketEcho);
} else {
  const app = express();
  app.get('/hello', hello);
  app.get('/stream', (req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.write('first chunk\n');
    released.then(() => res.end('second chunk\n'));
  });
  app.get('/release', (req, res) => {
    release();
    res.json({ released: true });
  });
  // A stand-in for a Backstage backend's two endpoints portico uses (tests/api/backstage.rs runs the
  // real one over http): the oauth2Proxy sign-in, whose token names the TLS client that asked, and a
  // catalog read that shows the token and the TLS client of the proxied request.
  app.get('/api/auth/oauth2Proxy/refresh', (req, res) => {
    const user = req.headers['x-forwarded-user'] || '';
    res.json({
      backstageIdentity: {
        token: `token-for-${clientSubject(req.socket) || 'anonymous'}`,
        expiresInSeconds: 3600,
        identity: { userEntityRef: `user:${user}`, ownershipEntityRefs: [] },
      },
    });
  });
  app.get('/api/catalog/entities', (req, res) => {
    res.json({ authorization: req.headers.authorization || null, client: clientSubject(req.socket) });
  });
  server = https.createServer(tls, app);
  server.on('upgrade', websocketEcho);
}

// A minimal RFC 6455 server: the handshake, then text frames (under 126 bytes) echoed as
// `echo <text> (<client subject or "no client certificate">)`, and a close answered.
function websocketEcho(req, socket) {
  const key = req.headers['sec-websocket-key'];
  if (req.url !== '/ws' || !key) {
    socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    return;
  }
  const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  const who = clientSubject(socket) || 'no client certificate';
  let buffer = Buffer.alloc(0);
  socket.on('data', (data) => {
    buffer = Buffer.concat([buffer, data]);
    while (buffer.length >= 2) {
      const length = buffer[1] & 0x7f;
      const masked = (buffer[1] & 0x80) !== 0;
      if (length > 125) { socket.destroy(); return; }
      const start = 2 + (masked ? 4 : 0);
      if (buffer.length < start + length) return;
      const opcode = buffer[0] & 0x0f;
      const payload = Buffer.from(buffer.subarray(start, start + length));
      if (masked) for (let i = 0; i < length; i++) payload[i] ^= buffer[2 + (i % 4)];
      buffer = buffer.subarray(start + length);
      if (opcode === 1) {
        const out = Buffer.from(`echo ${payload.toString()} (${who})`);
        socket.write(Buffer.concat([Buffer.from([0x81, out.length]), out]));
      } else if (opcode === 8) {
        socket.end(Buffer.from([0x88, 0]));
        return;
      }
    }
  });
  socket.on('error', () => {});
}

server.on('tlsClientError', () => {});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
