// Contacts other hosts the ways Node programs do, one action after another, for the egress tests.
//
//   node egress.js ACTION ARGS [, ACTION ARGS ...]
//     connect HOST PORT       net.connect, waits for connect or error
//     get URL                 http.get, waits for the answer
//     fetch URL               the global fetch (undici)
//     lookup HOST             dns.lookup (callback)
//     lookup-promise HOST     dns.promises.lookup
//     child ACTION ARGS ...   the rest of the actions in a child process (it inherits the environment)
//     exit-connecting HOST PORT   starts a connection and exits at once (process.exit), before it is made
//
// Each outcome is printed as one line on stdout ("connect 192.0.2.2:80 ok", "get ... 200"); a failure
// is printed, never thrown.
"use strict";

const childProcess = require("child_process");
const dns = require("dns");
const http = require("http");
const net = require("net");

const actions = [];
for (const word of process.argv.slice(2)) {
  if (word === ",") actions.push([]);
  else if (actions.length === 0) actions.push([word]);
  else actions[actions.length - 1].push(word);
}

const say = (text) => console.log(text);
const code = (error) => (error && (error.code || (error.cause && error.cause.code))) || String(error);

async function run(name, args, rest) {
  switch (name) {
    case "connect":
      return new Promise((done) => {
        const socket = net.connect(Number(args[1]), args[0]);
        socket.on("connect", () => {
          say(`connect ${args[0]}:${args[1]} ok`);
          socket.end();
          done();
        });
        socket.on("error", (error) => {
          say(`connect ${args[0]}:${args[1]} ${code(error)}`);
          done();
        });
      });
    case "get":
      return new Promise((done) => {
        http.get(args[0], (response) => {
          response.resume();
          response.on("end", () => {
            say(`get ${args[0]} ${response.statusCode}`);
            done();
          });
        }).on("error", (error) => {
          say(`get ${args[0]} ${code(error)}`);
          done();
        });
      });
    case "fetch":
      try {
        const response = await fetch(args[0]);
        await response.text();
        say(`fetch ${args[0]} ${response.status}`);
      } catch (error) {
        say(`fetch ${args[0]} ${code(error)}`);
      }
      return undefined;
    case "lookup":
      return new Promise((done) => {
        dns.lookup(args[0], (error, address) => {
          say(`lookup ${args[0]} ${error ? code(error) : address}`);
          done();
        });
      });
    case "lookup-promise":
      try {
        say(`lookup-promise ${args[0]} ${(await dns.promises.lookup(args[0])).address}`);
      } catch (error) {
        say(`lookup-promise ${args[0]} ${code(error)}`);
      }
      return undefined;
    case "child": {
      const words = [...args, ...rest.flatMap((action) => [",", ...action])];
      process.stdout.write(childProcess.execFileSync(process.execPath, [__filename, ...words]));
      return "stop";
    }
    case "exit-connecting":
      net.connect(Number(args[1]), args[0]).on("error", () => {});
      say(`exit-connecting ${args[0]}:${args[1]}`);
      process.exit(0);
      return undefined;
    default:
      throw new Error(`egress.js: unknown action ${name}`);
  }
}

(async () => {
  for (let i = 0; i < actions.length; i++) {
    const [name, ...args] = actions[i];
    if ((await run(name, args, actions.slice(i + 1))) === "stop") break;
  }
})();
