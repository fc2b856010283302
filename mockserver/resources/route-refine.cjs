// Routes a Node program's requests for telemetry.refine.dev to the local
// refine Telemetry Inspector. Loaded by `telemetry-inspector run` through
// NODE_OPTIONS="--require <this file>"; the CA comes from NODE_EXTRA_CA_CERTS.
//
// Two things are needed, because the host is hard-coded and HTTPS-only:
//   1. the name: dns.lookup (callback and promises API, `all: true` too)
//      answers the inspector's address for telemetry.refine.dev;
//   2. the port: refine connects to 443, the inspector listens elsewhere.
//      tls.connect (used by https.request/node-fetch and by undici, i.e. the
//      global fetch) and net.connect (plain http) are wrapped to swap the port
//      for that host only. The TLS server name stays telemetry.refine.dev, so
//      the certificate is checked against that name as usual.
// Everything else is passed through untouched. Nothing happens unless the
// TELEMETRY_INSPECTOR_* variables are set.
"use strict";

(function routeRefineTelemetry() {
  const HOST = "telemetry.refine.dev";
  const env = process.env;
  const httpsPort = Number(env.TELEMETRY_INSPECTOR_HTTPS_PORT || 0);
  const httpPort = Number(env.TELEMETRY_INSPECTOR_HTTP_PORT || 0);
  const target = env.TELEMETRY_INSPECTOR_TARGET_HOST || "127.0.0.1";
  const marker = Symbol.for("telemetry-inspector.routed");
  if (!httpsPort || globalThis[marker]) return;
  globalThis[marker] = true;

  const dns = require("dns");
  const net = require("net");
  const tls = require("tls");
  const family = net.isIPv6(target) ? 6 : 4;

  const isRefineHost = (name) =>
    typeof name === "string" && name.replace(/\.$/, "").toLowerCase() === HOST;

  // Keep util.promisify(dns.lookup) and friends working: copy the symbols
  // (e.g. the custom-promisify marker) the original carries.
  function sameShape(replacement, original) {
    for (const key of Reflect.ownKeys(original)) {
      if (typeof key === "symbol") {
        Object.defineProperty(replacement, key, Object.getOwnPropertyDescriptor(original, key));
      }
    }
    return replacement;
  }

  // -- 1. the name ----------------------------------------------------------
  const originalLookup = dns.lookup;
  dns.lookup = sameShape(function lookup(hostname, options, callback) {
    if (!isRefineHost(hostname)) return originalLookup.apply(this, arguments);
    if (typeof options === "function") {
      callback = options;
      options = {};
    }
    const all = Boolean(options && typeof options === "object" && options.all);
    process.nextTick(() => {
      if (all) callback(null, [{ address: target, family }]);
      else callback(null, target, family);
    });
    return {};
  }, originalLookup);

  if (dns.promises && typeof dns.promises.lookup === "function") {
    const originalPromiseLookup = dns.promises.lookup;
    dns.promises.lookup = function lookup(hostname, options) {
      if (!isRefineHost(hostname)) return originalPromiseLookup.apply(this, arguments);
      const all = Boolean(options && typeof options === "object" && options.all);
      return Promise.resolve(all ? [{ address: target, family }] : { address: target, family });
    };
  }

  // -- 2. the port ----------------------------------------------------------
  // (port[, host][, options][, callback]) or (options[, callback]) -> [options, callback]
  function normalise(args) {
    const list = Array.from(args);
    const callback = typeof list[list.length - 1] === "function" ? list.pop() : undefined;
    if (list[0] !== null && typeof list[0] === "object") return [Object.assign({}, list[0]), callback];
    const options = Object.assign({}, list.find((a, i) => i > 0 && a !== null && typeof a === "object"));
    if (list[0] !== undefined) options.port = list[0];
    if (typeof list[1] === "string") options.host = list[1];
    return [options, callback];
  }

  function rerouted(options, defaultPort, port) {
    if (options.socket || options.path) return null; // a tunnel or a unix socket: not ours to touch
    const host = options.host || options.hostname;
    const wanted = options.port === undefined || options.port === null || options.port === "" ?
      defaultPort : Number(options.port);
    if (!isRefineHost(host) || wanted !== defaultPort) return null;
    return Object.assign(options, { host: target, port, servername: options.servername || HOST });
  }

  const originalTlsConnect = tls.connect;
  tls.connect = sameShape(function connect() {
    const [options, callback] = normalise(arguments);
    const routed = rerouted(options, 443, httpsPort);
    if (!routed) return originalTlsConnect.apply(this, arguments);
    return callback ? originalTlsConnect.call(this, routed, callback) : originalTlsConnect.call(this, routed);
  }, originalTlsConnect);

  if (httpPort) {
    for (const name of ["connect", "createConnection"]) {
      const original = net[name];
      net[name] = sameShape(function connect() {
        const [options, callback] = normalise(arguments);
        const routed = rerouted(options, 80, httpPort);
        if (!routed) return original.apply(this, arguments);
        delete routed.servername;
        return callback ? original.call(this, routed, callback) : original.call(this, routed);
      }, original);
    }
    // http.Agent kept a reference to the original net.createConnection.
    try {
      const http = require("http");
      const originalAgentConnect = http.Agent.prototype.createConnection;
      http.Agent.prototype.createConnection = function createConnection() {
        const [options, callback] = normalise(arguments);
        const routed = rerouted(options, 80, httpPort);
        if (!routed) return originalAgentConnect.apply(this, arguments);
        delete routed.servername;
        return callback ? originalAgentConnect.call(this, routed, callback) : originalAgentConnect.call(this, routed);
      };
    } catch (error) {
      // no http module: nothing to route
    }
  }

  // -- 3. the proof ---------------------------------------------------------
  // `run` sets a nonce: load its route probe once per process, through the
  // routing above (https.get -> tls.connect), so the inspector knows this
  // program really is routed before it reports that nothing was sent.
  const nonce = env.TELEMETRY_INSPECTOR_PROBE;
  if (nonce && /^[0-9a-f]{32}$/.test(nonce)) {
    try {
      const probe = require("https").get(
        { host: HOST, path: `/__route-probe/${nonce}.gif`, agent: false, headers: { "User-Agent": "telemetry-inspector route probe" } },
        (response) => response.resume(),
      );
      probe.setTimeout(5000, () => probe.destroy());
      probe.on("error", () => {}); // the program's own work must never fail over the probe
    } catch (error) {
      // no https module: nothing to prove with
    }
  }

  // ES modules importing named exports (`import { lookup } from "dns"`) see the patches too.
  try {
    require("module").syncBuiltinESMExports();
  } catch (error) {
    // very old Node: only CommonJS callers are routed
  }
})();
