// A stand-in for @refinedev/cli's telemetry: POST https://telemetry.refine.dev/cli,
// sent the ways Node programs do it. Honours REFINE_NO_TELEMETRY exactly like
// the refine CLI (only the string "true" opts out).
//
//   node send.js https|fetch|node-fetch|http|dns
"use strict";

const mode = process.argv[2] || "https";
const URL_HTTPS = "https://telemetry.refine.dev/cli";

const payload = {
  nodeEnv: "development",
  nodeVersion: process.version,
  os: process.platform,
  osVersion: "test",
  command: "build",
  packages: [{ name: "@refinedev/core", version: "4.58.0" }],
  projectFramework: "vite",
  projectId: `node-${mode}`,
};
const body = JSON.stringify(payload);
const headers = { "Content-Type": "application/json" };

function done(status, text) {
  console.log(JSON.stringify({ mode, status, body: text }));
}

function fail(error) {
  console.error(`send.js ${mode}: ${error && (error.cause?.code || error.code) || ""} ${error && error.message}`);
  process.exit(3);
}

function viaModule(module, url) {
  const req = module.request(url, { method: "POST", headers }, (res) => {
    let text = "";
    res.setEncoding("utf8");
    res.on("data", (chunk) => (text += chunk));
    res.on("end", () => done(res.statusCode, text));
  });
  req.on("error", fail);
  req.end(body);
}

async function main() {
  if (process.env.REFINE_NO_TELEMETRY === "true") {
    console.log(JSON.stringify({ mode, skipped: "REFINE_NO_TELEMETRY=true" }));
    return;
  }
  switch (mode) {
    case "https":
      return viaModule(require("https"), URL_HTTPS);
    case "http":
      return viaModule(require("http"), "http://telemetry.refine.dev/cli");
    case "fetch": {
      const res = await fetch(URL_HTTPS, { method: "POST", headers, body });
      return done(res.status, await res.text());
    }
    case "node-fetch": {
      const nodeFetch = require("node-fetch");
      const res = await nodeFetch(URL_HTTPS, { method: "POST", headers, body });
      return done(res.status, await res.text());
    }
    case "dns": {
      const dns = require("dns");
      const util = require("util");
      const host = "telemetry.refine.dev";
      const results = {};
      results.callback = await new Promise((ok, ko) =>
        dns.lookup(host, (e, address, family) => (e ? ko(e) : ok({ address, family }))));
      results.callbackOptions = await new Promise((ok, ko) =>
        dns.lookup(host, { family: 4 }, (e, address, family) => (e ? ko(e) : ok({ address, family }))));
      results.callbackAll = await new Promise((ok, ko) =>
        dns.lookup(host, { all: true }, (e, list) => (e ? ko(e) : ok(list))));
      results.promises = await dns.promises.lookup(host);
      results.promisesAll = await require("dns/promises").lookup(host, { all: true });
      results.promisified = await util.promisify(dns.lookup)(host);
      results.other = await dns.promises.lookup("localhost");
      console.log(JSON.stringify(results));
      return;
    }
    default:
      fail(new Error(`unknown mode ${mode}`));
  }
}

main().catch(fail);
