// Workload API interop client: stock @grpc/grpc-js + @grpc/proto-loader against writd's socket.
// Usage: node creds_workload_client.js <socket> <workload.proto> <audience>
// Prints one JSON line: {"ok":true,"spiffe_id":..,"svid":..,"claims":..} or {"ok":false,"code":N,"details":..}.
'use strict';
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const [socketPath, protoPath, audience] = process.argv.slice(2);
const def = protoLoader.loadSync(protoPath, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
const pkg = grpc.loadPackageDefinition(def).SpiffeWorkloadAPI;
const client = new pkg.SpiffeWorkloadAPI('unix://' + socketPath, grpc.credentials.createInsecure());

function md() {
  const m = new grpc.Metadata();
  m.set('workload.spiffe.io', 'true');
  return m;
}
function deadline() { return new Date(Date.now() + 10000); }
function fail(err) {
  console.log(JSON.stringify({ ok: false, code: err.code, details: err.details }));
  client.close();
  process.exit(2);
}

client.FetchJWTSVID({ audience: [audience] }, md(), { deadline: deadline() }, (err, resp) => {
  if (err) return fail(err);
  const svid = resp.svids[0];
  client.ValidateJWTSVID({ audience, svid: svid.svid }, md(), { deadline: deadline() }, (verr, v) => {
    if (verr) return fail(verr);
    // Struct -> plain object for the test to read (only string/number/struct/list kinds occur).
    const plain = (val) => {
      if (val.kind === 'stringValue') return val.stringValue;
      if (val.kind === 'numberValue') return val.numberValue;
      if (val.kind === 'structValue') return obj(val.structValue);
      if (val.kind === 'listValue') return val.listValue.values.map(plain);
      if (val.kind === 'boolValue') return val.boolValue;
      return null;
    };
    const obj = (s) => Object.fromEntries(Object.entries(s.fields).map(([k, x]) => [k, plain(x)]));
    console.log(JSON.stringify({ ok: true, spiffe_id: svid.spiffe_id, svid: svid.svid, hint: svid.hint,
                                 validated_spiffe_id: v.spiffe_id, claims: obj(v.claims) }));
    client.close();
    process.exit(0);
  });
});
