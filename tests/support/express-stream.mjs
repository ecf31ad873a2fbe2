// A stock Express 4 app that answers slowly, for tests that change the config while a response is
// being streamed (tests/api/reload.rs).
//
// GET /stream?chunks=N&ms=M → N chunks of 1000 bytes, one every M milliseconds; chunk i is the letter
// `a` + (i mod 26) repeated, so a client can check the body is complete and in order.
// GET /hello → JSON naming the path.
//
// Usage: node tests/support/express-stream.mjs  → prints `listening <port>` once it accepts
// connections on 127.0.0.1; exits when its stdin closes.
import express from 'express';

const app = express();

app.get('/stream', (req, res) => {
  const chunks = Math.min(Number(req.query.chunks) || 10, 1000);
  const ms = Math.min(Number(req.query.ms) || 100, 10000);
  res.set('content-type', 'application/octet-stream');
  let sent = 0;
  const timer = setInterval(() => {
    const letter = String.fromCharCode(97 + (sent % 26));
    res.write(letter.repeat(1000));
    sent += 1;
    if (sent === chunks) {
      clearInterval(timer);
      res.end();
    }
  }, ms);
  req.on('close', () => clearInterval(timer));
});

app.use((req, res) => {
  res.json({ path: req.path });
});

const server = app.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
