// Mock OpenID Connect provider for migrate-hub's integration tests.
//
// oauth2-mock-server provides discovery, JWKS, /authorize (redirects straight
// back with ?code&state, no login page), /token and /userinfo. This file adds
// what the Rust tests need and the library does not do itself:
//   * PKCE S256 enforced and codes single-use / known (400 invalid_grant);
//   * ID tokens with the claims a relying party checks (built and signed here);
//   * a loopback-only control API under /__control to script the next login,
//     forge defective ID tokens, rotate the signing key or drop its kid.
//
// Start: `node tests/oidc/provider.mjs` (env OIDC_PORT, default 0 = any free
// port; binds 127.0.0.1). Prints one stdout line once ready:
// `listening http://127.0.0.1:<port>` (that URL is the issuer). Exits when
// stdin closes (so give it a pipe) and on SIGTERM/SIGINT. Logs go to stderr.

import { createHash, createHmac, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { createServer } from 'node:http';
import { Readable } from 'node:stream';
import { OAuth2Issuer, OAuth2Service } from 'oauth2-mock-server';

const ID_TOKEN_TTL = 600; // seconds
const DEFAULT_LOGIN = { sub: 'user-1', email: 'user@example.com', email_verified: true, tamper: null, claims: {} };
const TAMPERS = new Set(['bad_signature', 'other_key', 'alg_none', 'hs256_pubkey', 'wrong_iss', 'no_iss',
  'wrong_aud', 'no_aud', 'expired', 'no_iat', 'no_sub', 'wrong_nonce', 'no_nonce']);
const VERIFIER_RE = /^[A-Za-z0-9\-._~]{43,128}$/; // RFC 7636 section 4.1

// ---- keys: `keys` is what the JWKS publishes; the last one signs ----------
function newKey() {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const meta = { kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };
  return { kid: meta.kid, privateKey, publicKey,
    privateJwk: { ...privateKey.export({ format: 'jwk' }), ...meta },
    publicJwk: { ...publicKey.export({ format: 'jwk' }), ...meta } };
}
const withoutKid = ({ kid, privateJwk: { kid: _a, ...privateJwk }, publicJwk: { kid: _b, ...publicJwk }, ...k }) =>
  ({ ...k, kid: undefined, privateJwk, publicJwk });

const initialKey = newKey();
let keys = [initialKey];
let next = null;          // the scripted next login, consumed by the next successful /token
const log = [];           // token-endpoint requests, for GET /__control/requests
const codes = new Map();  // code -> { challenge, nonce, clientId, used }
const tokens = new Map(); // access_token -> userinfo body
const signingKey = () => keys.at(-1);

// The library's issuer keeps its own round-robin key store; point it at ours
// so the JWKS and the library-signed access tokens follow `keys`.
class Issuer extends OAuth2Issuer {
  get keys() {
    return { get: () => signingKey().privateJwk, toJSON: () => keys.map((k) => k.publicJwk) };
  }
}
const issuer = new Issuer();
const service = new OAuth2Service(issuer);

// ---- library hooks -----------------------------------------------------
service.on('beforeWellKnownOpenIdConfiguration', (cfg) => {
  cfg.body.code_challenge_methods_supported = ['S256'];
});

service.on('beforeAuthorizeRedirect', ({ url }, req) => {
  const code = url.searchParams.get('code');
  if (!code) return; // the library already redirects with an error
  const q = req.query;
  if (q.code_challenge !== undefined && q.code_challenge_method !== 'S256') {
    url.searchParams.delete('code'); // (the library redirects to this same URL object)
    url.searchParams.set('error', 'invalid_request');
    url.searchParams.set('error_description', 'code_challenge_method must be S256');
    return;
  }
  codes.set(code, { challenge: q.code_challenge, nonce: q.nonce, clientId: q.client_id, used: false });
});

service.on('beforeTokenSigning', (token, req) => { // access tokens (its id_token is replaced below)
  if (!signingKey().kid) delete token.header.kid;
  if (req.login) token.payload.sub = req.login.sub;
});

service.on('beforeResponse', (response, req) => {
  if (response.statusCode !== 200 || !req.login) return;
  if (response.body.id_token) response.body.id_token = buildIdToken(req);
  const { sub, email, email_verified } = req.login;
  tokens.set(response.body.access_token, { sub, email, email_verified });
});

service.on('beforeUserinfo', (response, req) => {
  const info = tokens.get((req.headers.authorization ?? '').replace(/^Bearer\s+/i, ''));
  if (info) response.body = info;
  else Object.assign(response, { statusCode: 401, body: { error: 'invalid_token' } });
});

// ---- ID tokens -----------------------------------------------------------
const b64json = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const rs256 = (input, privateKey) => sign('sha256', Buffer.from(input), privateKey);

function buildIdToken({ login, rec, clientId }) {
  const now = Math.floor(Date.now() / 1000);
  const c = { iss: issuer.url, aud: clientId, azp: clientId, sub: login.sub, email: login.email,
    email_verified: login.email_verified, iat: now, exp: now + ID_TOKEN_TTL, nonce: rec?.nonce, ...login.claims };
  switch (login.tamper) {
    case 'wrong_iss': c.iss = 'https://wrong-issuer.example'; break;
    case 'no_iss': delete c.iss; break;
    case 'wrong_aud': c.aud = 'some-other-client'; break;
    case 'no_aud': delete c.aud; break;
    case 'expired': c.exp = now - ID_TOKEN_TTL; c.iat = c.exp - ID_TOKEN_TTL; break;
    case 'no_iat': delete c.iat; break;
    case 'no_sub': delete c.sub; break;
    case 'wrong_nonce': c.nonce = `wrong-${randomBytes(8).toString('hex')}`; break;
    case 'no_nonce': delete c.nonce; break;
  }
  for (const k of Object.keys(c)) if (c[k] === null || c[k] === undefined) delete c[k];

  const key = signingKey();
  const header = { alg: 'RS256', typ: 'JWT', ...(key.kid && { kid: key.kid }) };
  const input = `${b64json(header)}.${b64json(c)}`;
  switch (login.tamper) {
    case 'alg_none':
      return `${b64json({ ...header, alg: 'none' })}.${b64json(c)}.`;
    case 'hs256_pubkey': { // key confusion: HMAC secret = the real key's SPKI PEM text
      const h = `${b64json({ ...header, alg: 'HS256' })}.${b64json(c)}`;
      const pem = key.publicKey.export({ type: 'spki', format: 'pem' });
      return `${h}.${createHmac('sha256', pem).update(h).digest('base64url')}`;
    }
    case 'other_key': { // a fresh key that is not in the JWKS, same kid header
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      return `${input}.${rs256(input, privateKey).toString('base64url')}`;
    }
    case 'bad_signature': {
      const sig = rs256(input, key.privateKey);
      sig[sig.length >> 1] ^= 0xff;
      return `${input}.${sig.toString('base64url')}`;
    }
    default:
      return `${input}.${rs256(input, key.privateKey).toString('base64url')}`;
  }
}

// ---- HTTP ----------------------------------------------------------------
const readBody = async (req) => { const c = []; for await (const x of req) c.push(x); return Buffer.concat(c); };
function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}
function basicAuthClientId(req) {
  const m = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  return m ? decodeURIComponent(Buffer.from(m[1], 'base64').toString().split(':')[0]) : undefined;
}

function checkCode(body, rec) {
  if (body.grant_type !== 'authorization_code') return null;
  if (!rec) return 'unknown authorization code';
  if (rec.used) return 'authorization code already used';
  const v = body.code_verifier;
  if (rec.challenge === undefined) return v === undefined ? null : 'code_verifier sent but no code_challenge was given';
  if (v === undefined) return 'code_verifier missing';
  if (typeof v !== 'string' || !VERIFIER_RE.test(v)) return 'malformed code_verifier';
  if (createHash('sha256').update(v).digest('base64url') !== rec.challenge) return 'code_verifier does not match code_challenge';
  return null;
}

// POST /token: check the code here, then replay the request into the library.
async function token(req, res) {
  const raw = await readBody(req);
  let body = {};
  try {
    body = (req.headers['content-type'] ?? '').includes('json') ? JSON.parse(raw) : Object.fromEntries(new URLSearchParams(raw.toString()));
  } catch { /* the library answers 400 for a malformed body */ }
  const entry = { grant_type: body.grant_type ?? null, code_verifier_present: body.code_verifier !== undefined, outcome: null, status: null };
  log.push(entry);
  const rec = typeof body.code === 'string' ? codes.get(body.code) : undefined;
  const error = checkCode(body, rec);
  if (error) {
    Object.assign(entry, { outcome: 'invalid_grant', status: 400, error_description: error });
    console.error(`token: invalid_grant: ${error}`);
    return send(res, 400, { error: 'invalid_grant', error_description: error });
  }
  if (rec) rec.used = true;
  const login = { ...DEFAULT_LOGIN, ...next };
  next = null;
  res.on('finish', () => Object.assign(entry, { status: res.statusCode, outcome: res.statusCode === 200 ? 'ok' : 'error' }));
  const replay = Object.assign(Readable.from([raw]), { headers: req.headers, method: req.method, url: req.url, socket: req.socket,
    login, rec, clientId: basicAuthClientId(req) ?? body.client_id ?? rec?.clientId });
  service.requestHandler(replay, res);
}

async function control(req, res, path) {
  if (!/^(127\.|::1$|::ffff:127\.)/.test(req.socket.remoteAddress ?? '')) return send(res, 403, { error: 'loopback only' });
  let body;
  try { body = JSON.parse((await readBody(req)).toString() || '{}'); } catch { return send(res, 400, { error: 'body must be JSON' }); }
  switch (`${req.method} ${path}`) {
    case 'POST /__control/next': {
      const unknown = Object.keys(body).filter((k) => !(k in DEFAULT_LOGIN));
      if (unknown.length) return send(res, 400, { error: `unknown fields: ${unknown.join(', ')}` });
      if (body.tamper != null && !TAMPERS.has(body.tamper)) return send(res, 400, { error: `unknown tamper: ${body.tamper}` });
      next = { ...body, claims: { ...body.claims } };
      return send(res, 200, { next: { ...DEFAULT_LOGIN, ...next } });
    }
    case 'POST /__control/rotate': {
      const k = newKey();
      keys = body.drop_old ? [k] : [...keys, k];
      return send(res, 200, { kid: k.kid, jwks: { keys: issuer.keys.toJSON() } });
    }
    case 'POST /__control/single-key-no-kid':
      keys = [withoutKid(signingKey())];
      return send(res, 200, { jwks: { keys: issuer.keys.toJSON() } });
    case 'POST /__control/reset':
      keys = [initialKey]; next = null; log.length = 0;
      return send(res, 200, { kid: initialKey.kid });
    case 'GET /__control/requests':
      return send(res, 200, log);
    default:
      return send(res, 404, { error: 'unknown control route' });
  }
}

const server = createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://x').pathname.replace(/(.)\/+$/, '$1');
  const route = path.startsWith('/__control') ? control(req, res, path)
    : req.method === 'POST' && path === '/token' ? token(req, res)
    : service.requestHandler(req, res);
  Promise.resolve(route).catch((err) => {
    console.error(err);
    if (!res.headersSent) send(res, 500, { error: 'server_error', error_description: String(err) });
  });
});

const quit = (why) => { console.error(`oidc provider: ${why}, exiting`); process.exit(0); };
process.on('SIGTERM', () => quit('SIGTERM'));
process.on('SIGINT', () => quit('SIGINT'));
process.stdin.on('end', () => quit('stdin closed'));
process.stdin.on('close', () => quit('stdin closed'));
process.stdin.on('error', () => quit('stdin error'));
process.stdin.resume();

server.on('error', (err) => { console.error(err); process.exit(1); });
server.listen(Number(process.env.OIDC_PORT || 0), '127.0.0.1', () => {
  issuer.url = `http://127.0.0.1:${server.address().port}`;
  process.stdout.write(`listening ${issuer.url}\n`);
});
