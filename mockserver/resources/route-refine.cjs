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
//
// With TELEMETRY_INSPECTOR_EGRESS_FILE set, every other host the process looks
// up, connects to or requests is appended to that file (section 4), so that
// `run` can list what else the program contacted.
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

  // -- 4. what else --------------------------------------------------------
  // One JSON line per name looked up (LOOKUP), TCP connection (CONNECT: net and
  // tls both end in net.Socket.prototype.connect, so each connection is seen
  // once) and http(s)/fetch request (REQUEST, from the diagnostics channels that
  // Node's http client and its bundled undici publish). telemetry.refine.dev and
  // loopback are left out. Each line is appended synchronously as its outcome is
  // known (what never finished is written at exit); child processes inherit the
  // variable and append too. Recording never throws into the program.
  const egressFile = env.TELEMETRY_INSPECTOR_EGRESS_FILE;
  if (egressFile) {
    try {
      watchEgress(egressFile);
    } catch (error) {
      // the program runs on, unlisted
    }
  }

  function watchEgress(file) {
    const fs = require("fs");
    const MAX_BYTES = 1024 * 1024; // the report's cap, all processes together
    const MAX_TEXT = 2048; // a URL or host longer than this is cut
    const pending = new Set();
    let capped = false;

    const cut = (value) => (typeof value === "string" ? value.slice(0, MAX_TEXT) : null);
    function append(entry) {
      if (capped) return;
      try {
        let size;
        try {
          size = fs.statSync(file).size;
        } catch (error) {
          return; // the report is gone (run has ended): nothing to add to
        }
        if (size >= MAX_BYTES) {
          capped = true;
          entry = { kind: "CAPPED" };
        }
        entry.at = new Date().toISOString();
        fs.appendFileSync(file, JSON.stringify(entry) + "\n", { mode: 0o600 });
      } catch (error) {
        // a full disk or a closed folder is not the program's problem
      }
    }

    const loopbackAddress = (address) => {
      const text = String(address).replace(/^\[|\]$/g, "").toLowerCase();
      if (net.isIPv4(text)) return text.startsWith("127.");
      return text === "::1" || /^(0:){7}1$/.test(text) || /^::ffff:127\./.test(text);
    };
    const loopbackName = (host) => {
      const name = host.replace(/\.$/, "").toLowerCase();
      return name === "localhost" || name.endsWith(".localhost") || name === "ip6-localhost" ||
        name === "ip6-loopback" || loopbackAddress(name);
    };
    const listed = (host) => typeof host === "string" && host !== "" && !isRefineHost(host) && !loopbackName(host);
    const errorCode = (error) => (error ? cut(String(error.code || error.message || error)) : null);

    function finish(entry, fields) {
      if (entry.done) return;
      entry.done = true;
      pending.delete(entry);
      append(Object.assign({}, entry.line, fields));
    }
    // At exit (process.exit, a crash): what is still open is written as it stands.
    process.once("exit", () => {
      for (const entry of Array.from(pending)) {
        if (entry.atExit) entry.atExit();
        finish(entry, { error: null, unfinished: true });
      }
    });

    // Names: every dns.lookup (net.connect's too), callback and promises API.
    const addressesOf = (found) =>
      (Array.isArray(found) ? found : [found])
        .map((item) => (typeof item === "string" ? item : item && item.address))
        .filter((item) => typeof item === "string")
        .slice(0, 4);
    function noteLookup(host, error, found) {
      const addresses = error ? [] : addressesOf(found);
      if (!error && addresses.length && addresses.every(loopbackAddress)) return; // a local name
      append({ kind: "LOOKUP", host: cut(host), error: errorCode(error), addresses });
    }
    const wantedName = (host) => listed(host) && !net.isIP(host);

    const routedLookup = dns.lookup;
    dns.lookup = sameShape(function lookup(hostname) {
      const args = Array.from(arguments);
      const last = args.length - 1;
      try {
        if (last >= 1 && typeof args[last] === "function" && wantedName(hostname)) {
          const callback = args[last];
          args[last] = function lookedUp(error, found) {
            noteLookup(hostname, error, found);
            return callback.apply(this, arguments);
          };
        }
      } catch (error) {
        // unlisted, unchanged
      }
      return routedLookup.apply(this, args);
    }, routedLookup);

    if (dns.promises && typeof dns.promises.lookup === "function") {
      const routedPromiseLookup = dns.promises.lookup;
      dns.promises.lookup = function lookup(hostname) {
        const result = routedPromiseLookup.apply(this, arguments);
        if (!wantedName(hostname) || !result || typeof result.then !== "function") return result;
        // The same outcome, passed on: an unhandled rejection stays unhandled.
        return result.then(
          (found) => {
            noteLookup(hostname, null, found);
            return found;
          },
          (error) => {
            noteLookup(hostname, error);
            throw error;
          },
        );
      };
    }

    // Connections: net.connect, net.createConnection and tls.connect all call this.
    const originalSocketConnect = net.Socket.prototype.connect;
    net.Socket.prototype.connect = sameShape(function connect() {
      try {
        watchConnection(this, arguments);
      } catch (error) {
        // unlisted, unchanged
      }
      return originalSocketConnect.apply(this, arguments);
    }, originalSocketConnect);

    function watchConnection(socket, args) {
      let options = args[0];
      if (Array.isArray(options)) options = options[0]; // net.connect passes its arguments normalised
      let host;
      let port;
      if (options !== null && typeof options === "object") {
        if (options.path) return; // a unix socket or pipe
        host = options.host;
        port = options.port;
      } else if (typeof options === "number" || (typeof options === "string" && /^\d+$/.test(options))) {
        port = options;
        host = typeof args[1] === "string" ? args[1] : undefined;
      } else {
        return; // a pipe path
      }
      host = host || "localhost"; // Node's default
      if (!listed(host)) return;
      const entry = { line: { kind: "CONNECT", host: cut(host), port: Number(port) || null } };
      pending.add(entry);
      // 'connect' and 'close' listeners change nothing ('error' ones would: an unhandled error must stay one).
      const dropped = () => {
        entry.done = true; // the name led back to this machine: loopback is not egress
        pending.delete(entry);
      };
      socket.once("connect", () => {
        const address = socket.remoteAddress || null;
        if (address && loopbackAddress(address)) dropped();
        else finish(entry, { error: null, address });
      });
      const ended = () => {
        const error = socket.errored;
        if (error && error.address && loopbackAddress(error.address)) dropped();
        else finish(entry, { error: errorCode(error) || "closed before connecting" });
      };
      socket.once("close", ended);
      // The 'close' after a failure comes a turn later: a program that exits on the error itself
      // is still listed with it.
      entry.atExit = () => {
        if (socket.errored || socket.destroyed) ended();
      };
    }

    // Requests: http(s).request and fetch, through their diagnostics channels.
    let channels;
    try {
      channels = require("diagnostics_channel");
    } catch (error) {
      return; // an old Node: names and connections only
    }
    const subscribe = (name, handler) => {
      const safe = (message) => {
        try {
          handler(message || {});
        } catch (error) {
          // unlisted
        }
      };
      if (typeof channels.subscribe === "function") channels.subscribe(name, safe);
      else channels.channel(name).subscribe(safe);
    };
    const requests = new WeakMap();
    function startRequest(request, method, url) {
      let host;
      try {
        host = new URL(url).hostname.replace(/^\[|\]$/g, "");
      } catch (error) {
        return;
      }
      if (!listed(host)) return;
      const entry = { line: { kind: "REQUEST", method: cut(String(method || "GET")), url: cut(url), host: cut(host) } };
      pending.add(entry);
      requests.set(request, entry);
    }
    const answered = (request, status) => {
      const entry = requests.get(request);
      if (entry) finish(entry, { status: Number(status) || null, error: null });
    };
    const failed = (request, error) => {
      const entry = requests.get(request);
      if (entry) finish(entry, { status: null, error: errorCode(error) || "failed" });
    };
    subscribe("http.client.request.start", ({ request }) => {
      if (!request) return;
      const authority = (request.getHeader && request.getHeader("host")) || request.host;
      startRequest(request, request.method, `${request.protocol || "http:"}//${authority}${request.path || "/"}`);
    });
    subscribe("http.client.response.finish", ({ request, response }) => answered(request, response && response.statusCode));
    subscribe("http.client.request.error", ({ request, error }) => failed(request, error));
    subscribe("undici:request:create", ({ request }) => {
      if (request) startRequest(request, request.method, String(request.origin || "") + (request.path || "/"));
    });
    subscribe("undici:request:headers", ({ request, response }) => answered(request, response && response.statusCode));
    subscribe("undici:request:error", ({ request, error }) => failed(request, error));
  }

  // ES modules importing named exports (`import { lookup } from "dns"`) see the patches too.
  try {
    require("module").syncBuiltinESMExports();
  } catch (error) {
    // very old Node: only CommonJS callers are routed
  }
})();
