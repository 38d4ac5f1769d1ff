// A real OAuth2/OIDC server (oauth2-mock-server) for the integration tests, with a small
// control endpoint beside it: what the server was asked (token grants, revocations, userinfo),
// the access tokens it issued (so a test can scan storage for them), and switches that make
// the next responses short-lived or refused. Prints one JSON line: {"issuer", "control"}.
import http from 'node:http';
import { OAuth2Server } from 'oauth2-mock-server';

const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');

const counts = { authorization_code: 0, refresh_token: 0, revoke: 0, userinfo: 0 };
const tokens = [];
const grants = [];
let expiresIn = null;
let failRefresh = false;

server.service.on('beforeResponse', (response, req) => {
  const grant = req.body?.grant_type;
  if (grant in counts) counts[grant] += 1;
  grants.push({ grant, client_id: req.body?.client_id, has_secret: Boolean(req.body?.client_secret), code_verifier: Boolean(req.body?.code_verifier) });
  if (grant === 'refresh_token' && failRefresh) {
    response.statusCode = 400;
    response.body = { error: 'invalid_grant', error_description: 'the refresh token was revoked' };
    return;
  }
  if (expiresIn !== null) response.body.expires_in = expiresIn;
  tokens.push(response.body.access_token, response.body.refresh_token);
});
server.service.on('beforeUserinfo', (response) => {
  counts.userinfo += 1;
  response.body = { sub: 'johndoe', email: 'johndoe@example.com', name: 'John Doe' };
});
server.service.on('beforeRevoke', () => { counts.revoke += 1; });

await server.start(0, '127.0.0.1');

const control = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'POST' && url.pathname === '/expires-in') expiresIn = Number(url.searchParams.get('value'));
  if (req.method === 'POST' && url.pathname === '/fail-refresh') failRefresh = url.searchParams.get('value') !== 'false';
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ counts, tokens, grants }));
});
control.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ issuer: server.issuer.url, control: `http://127.0.0.1:${control.address().port}` }));
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
