// A relying party on another host, with stock OIDC libraries (pinned openid-client and jose): it
// knows only writd's issuer URL and the CA of writd's server certificate. It discovers writd from
// the issuer, fetches the JWKS the discovery document names, verifies a JWT-SVID writd issued
// (issuer, audience, ES256), and introspects that token with its client certificate (RFC 8705
// tls_client_auth) and without one.
//
// Usage: node oidc_rp.mjs ISSUER CA_FILE CLIENT_CERT CLIENT_KEY SVID_FILE AUDIENCE
// The issuer's host name resolves to 127.0.0.1 (what DNS would do for writd's host). Prints one
// JSON object with what each step found; exits 0 when every step ran (the test judges the values).
import fs from 'node:fs';
import https from 'node:https';
import * as client from 'openid-client';
import * as jose from 'jose';

const [issuer, caFile, certFile, keyFile, svidFile, audience] = process.argv.slice(2);
const ca = fs.readFileSync(caFile);
const svid = fs.readFileSync(svidFile, 'utf8').trim();

// A fetch over node:https with our CA, optionally a client certificate, and the issuer's name
// resolved to loopback. Both libraries take it through their customFetch option.
function fetcher(withCert) {
  const tls = { ca };
  if (withCert) {
    tls.cert = fs.readFileSync(certFile);
    tls.key = fs.readFileSync(keyFile);
  }
  const lookup = (host, opts, cb) =>
    opts && opts.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4);
  return (url, options = {}) =>
    new Promise((resolve, reject) => {
      const headers = Object.fromEntries(new Headers(options.headers || {}).entries());
      let body = options.body;
      if (body instanceof URLSearchParams) body = body.toString();
      const req = https.request(url, { method: options.method || 'GET', headers, lookup, agent: false, ...tls },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const h = new Headers();
            for (const [k, v] of Object.entries(res.headers)) h.set(k, Array.isArray(v) ? v.join(', ') : v);
            resolve(new Response(Buffer.concat(chunks), { status: res.statusCode, headers: h }));
          });
        });
      req.on('error', reject);
      if (options.signal) options.signal.addEventListener('abort', () => req.destroy(new Error('aborted')));
      req.end(body === undefined || body === null ? undefined : body);
    });
}

const out = {};
async function step(name, fn) {
  try {
    out[name] = await fn();
  } catch (e) {
    out[name] = { error: e.code || e.name, message: e.message, status: e.status,
                  oauth_error: e.error, oauth_error_description: e.error_description };
  }
}

const discover = (withCert) => client.discovery(new URL(issuer), 'rp-billing', undefined,
  client.TlsClientAuth(), { [client.customFetch]: fetcher(withCert) });

let config;
await step('discovery', async () => {
  config = await discover(true);
  const m = config.serverMetadata();
  return { issuer: m.issuer, jwks_uri: m.jwks_uri, introspection_endpoint: m.introspection_endpoint,
           introspection_auth: m.introspection_endpoint_auth_methods_supported };
});
if (config) {
  const jwks = jose.createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri),
    { [jose.customFetch]: fetcher(false) });
  const verify = (token) => jose.jwtVerify(token, jwks, { issuer, audience, algorithms: ['ES256'] });
  await step('verify', async () => {
    const { payload, protectedHeader } = await verify(svid);
    return { iss: payload.iss, sub: payload.sub, aud: payload.aud, kid: protectedHeader.kid };
  });
  // One byte of the signature changed: the same verifier refuses it.
  await step('verify_tampered', async () => {
    const sig = svid.slice(svid.lastIndexOf('.') + 1);
    const flipped = (sig[5] === 'A' ? 'B' : 'A');
    await verify(svid.slice(0, svid.lastIndexOf('.') + 1) + sig.slice(0, 5) + flipped + sig.slice(6));
    return { accepted: true };
  });
  await step('wrong_audience', async () => {
    await jose.jwtVerify(svid, jwks, { issuer, audience: 'https://other.example', algorithms: ['ES256'] });
    return { accepted: true };
  });
  await step('introspect', async () => {
    const r = await client.tokenIntrospection(config, svid);
    return { active: r.active, sub: r.sub, iss: r.iss };
  });
  await step('introspect_without_cert', async () => {
    const r = await client.tokenIntrospection(await discover(false), svid);
    return { active: r.active };
  });
}
console.log(JSON.stringify(out));
