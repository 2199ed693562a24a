// A real OAuth 2.0 authorization server on loopback for tuimail's tests.
//
// oidc-provider (a certified OpenID provider) with: a public native client for
// the loopback redirect (any 127.0.0.1 port, RFC 8252), PKCE S256 required, the
// device authorization grant (RFC 8628), refresh tokens for whatever scope was
// asked, token introspection (RFC 7662) and revocation (RFC 7009), and one test
// user who signs in through this file's own login and consent forms.
// tests/oauth_support.py starts it and plays the user over HTTP.
//
// Usage: node server.mjs [--port N] [--access-token-ttl SECONDS]
//                        [--device-interval SECONDS] [--device-code-ttl SECONDS]
// Port 0 (the default) takes a free port. Once listening it prints one line of
// JSON on stdout (issuer, endpoints, clients, user) and serves until killed.

import http from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: options } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'access-token-ttl': { type: 'string', default: '3600' },
    'device-interval': { type: 'string', default: '1' },
    'device-code-ttl': { type: 'string', default: '600' },
  },
});

const positive = (name) => {
  const value = Number(options[name]);
  if (!Number.isInteger(value) || value < 0) {
    process.stderr.write(`--${name} takes a whole number of seconds, not ${options[name]}\n`);
    process.exit(2);
  }
  return value;
};
const port = positive('port');
const accessTokenTtl = positive('access-token-ttl');
const deviceInterval = positive('device-interval');
const deviceCodeTtl = positive('device-code-ttl');

// The resource server the mail tokens are for (the SMTP server), and its scope.
const MAIL_RESOURCE = 'urn:tuimail:test:smtp';
const MAIL_SCOPE = 'smtp';

const USER = {
  login: 'alice@example.test',
  password: 'correct horse battery staple',
};

const CLIENTS = {
  // The installed app: public, no secret, loopback redirect and device grant.
  app: {
    client_id: 'tuimail-test-app',
    client_name: 'tuimail (tests)',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    redirect_uris: ['http://127.0.0.1/'],
    response_types: ['code'],
    grant_types: [
      'authorization_code',
      'refresh_token',
      'urn:ietf:params:oauth:grant-type:device_code',
    ],
  },
  // An installed app that the provider gives a secret (as Google does).
  secretApp: {
    client_id: 'tuimail-test-secret-app',
    client_secret: 'test-app-secret-not-a-real-one',
    client_name: 'tuimail (tests, with a secret)',
    application_type: 'native',
    token_endpoint_auth_method: 'client_secret_post',
    redirect_uris: ['http://127.0.0.1/'],
    response_types: ['code'],
    grant_types: ['authorization_code', 'refresh_token'],
  },
  // The SMTP server's own credentials, for introspecting the tokens it is shown.
  introspector: {
    client_id: 'tuimail-test-smtp-server',
    client_secret: 'test-introspection-secret-not-a-real-one',
    token_endpoint_auth_method: 'client_secret_basic',
    redirect_uris: [],
    response_types: [],
    grant_types: [],
  },
};

const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

const page = (title, body) => `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;

const loginForm = (uid, message) => page('Sign in', `
${message ? `<p class="error">${escapeHtml(message)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}">
  <input type="hidden" name="prompt" value="login">
  <label>Email <input type="email" name="login"></label>
  <label>Password <input type="password" name="password"></label>
  <button type="submit">Sign in</button>
</form>`);

const consentForm = (uid, clientName, scopes) => page('Authorize', `
<p>${escapeHtml(clientName)} asks for: ${escapeHtml(scopes.join(' ') || '(nothing new)')}</p>
<form method="post" action="/interaction/${escapeHtml(uid)}">
  <input type="hidden" name="prompt" value="consent">
  <button type="submit" name="decision" value="allow">Allow</button>
  <button type="submit" name="decision" value="deny">Deny</button>
</form>`);

const readForm = (req) => new Promise((resolve, reject) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk) => {
    body += chunk;
    if (body.length > 65536) {
      reject(new Error('form too large'));
      req.destroy();
    }
  });
  req.on('end', () => resolve(new URLSearchParams(body)));
  req.on('error', reject);
});

const sendHtml = (res, status, html) => {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
};

// Listen first (port 0: any free one), so the issuer names the real port.
const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: Object.values(CLIENTS),
  pkce: { required: () => true },
  cookies: { keys: ['tuimail-test-cookie-key-not-a-secret'] },
  scopes: ['openid', 'offline_access'],
  features: {
    devInteractions: { enabled: false },
    deviceFlow: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => MAIL_RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, indicator) => {
        if (indicator !== MAIL_RESOURCE) {
          throw new Provider.errors.InvalidTarget();
        }
        return {
          scope: MAIL_SCOPE,
          accessTokenFormat: 'opaque',
          accessTokenTTL: accessTokenTtl,
        };
      },
    },
  },
  // A refresh token for every sign-in of a client allowed one, whatever the
  // scope (Google does not use offline_access), and not tied to the session.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  expiresWithSession: async () => false,
  ttl: {
    AccessToken: accessTokenTtl,
    DeviceCode: deviceCodeTtl,
    RefreshToken: 24 * 60 * 60,
    Grant: 24 * 60 * 60,
    Interaction: 10 * 60,
    Session: 24 * 60 * 60,
  },
  findAccount: async (_ctx, sub) => {
    if (sub !== USER.login) {
      return undefined;
    }
    return { accountId: sub, claims: async () => ({ sub, email: sub }) };
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
});

// oidc-provider answers the device authorization request without an
// `interval` (so clients wait the default five seconds): say a shorter one.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === '/device/auth' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
    ctx.body = { ...ctx.body, interval: deviceInterval };
  }
});

async function interaction(req, res, uid) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    sendHtml(res, 400, page('Sign-in failed', '<p>This sign-in page belongs to another request.</p>'));
    return;
  }
  const { prompt, params, session } = details;
  if (req.method === 'GET') {
    if (prompt.name === 'login') {
      sendHtml(res, 200, loginForm(uid));
    } else {
      const client = await provider.Client.find(params.client_id);
      const asked = [
        ...(prompt.details.missingOIDCScope ?? []),
        ...Object.values(prompt.details.missingResourceScopes ?? {}).flat(),
      ];
      sendHtml(res, 200, consentForm(uid, client?.clientName ?? params.client_id, asked));
    }
    return;
  }
  const form = await readForm(req);
  if (form.get('prompt') !== prompt.name) {
    sendHtml(res, 400, page('Sign-in failed', '<p>This form is out of date: start again.</p>'));
    return;
  }
  if (prompt.name === 'login') {
    if (form.get('login') !== USER.login || form.get('password') !== USER.password) {
      sendHtml(res, 200, loginForm(uid, 'Wrong email or password.'));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: USER.login } }, {
      mergeWithLastSubmission: false,
    });
    return;
  }
  if (form.get('decision') !== 'allow') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'The user refused to allow access.',
    }, { mergeWithLastSubmission: false });
    return;
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) {
    grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  }
  if (missing.missingOIDCClaims) {
    grant.addOIDCClaims(missing.missingOIDCClaims);
  }
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, {
    mergeWithLastSubmission: true,
  });
}

const handle = provider.callback();
server.on('request', (req, res) => {
  const match = /^\/interaction\/([A-Za-z0-9_-]+)$/.exec(new URL(req.url, issuer).pathname);
  if (!match) {
    handle(req, res);
    return;
  }
  interaction(req, res, match[1]).catch((error) => {
    if (!res.headersSent) {
      sendHtml(res, 400, page('Sign-in failed', `<p>${escapeHtml(error.message)}</p>`));
    } else {
      res.end();
    }
  });
});

const discovery = (path) => `${issuer}${path}`;
process.stdout.write(`${JSON.stringify({
  issuer,
  authorization_endpoint: discovery('/auth'),
  token_endpoint: discovery('/token'),
  device_authorization_endpoint: discovery('/device/auth'),
  introspection_endpoint: discovery('/token/introspection'),
  revocation_endpoint: discovery('/token/revocation'),
  scope: MAIL_SCOPE,
  resource: MAIL_RESOURCE,
  clients: CLIENTS,
  user: USER,
})}\n`);

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
