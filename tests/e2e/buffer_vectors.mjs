// Encoder vectors for the two paths @refinedev/core uses to encode its telemetry payload:
//   browser:   btoa(JSON.stringify(payload))            (Latin-1 bytes; throws above U+00FF)
//   Node/SSR:  Buffer.from(JSON.stringify(payload)).toString("base64")   (UTF-8 bytes)
//
// Prints a JSON list [{payload, json, btoa, btoa_error, buffer}] to stdout, or writes it
// to the path given as the first argument.
//   node tests/e2e/buffer_vectors.mjs tests/data/encoder_vectors.json
import { writeFileSync } from "node:fs";

const telemetry = (version, router, projectId) => {
  const payload = {
    providers: {
      auth: false,
      auditLog: false,
      live: false,
      router,
      data: true,
      i18n: false,
      notification: false,
      accessControl: false,
    },
    version,
    resourceCount: 2,
    projectId, // JSON.stringify drops it when undefined, exactly like refine
  };
  return payload;
};

const projectIds = [
  undefined,
  "café", // Latin-1 via btoa (0xE9), UTF-8 via Buffer (0xC3 0xA9)
  "€", // above U+00FF: btoa throws, refine sends nothing
  "😀", // astral: btoa throws
  "p+/=?&?>?>", // ASCII; base64 has raw + and / and = padding for 4.x and 5.x payloads
  "p+/=?&éûû", // Latin-1; base64 has raw + and / for 4.x and 5.x payloads
  "<b>x</b>",
  "ÿÿÿ", // Latin-1 0xFF bytes -> "///" runs in btoa output
  "a\u0000b\n\"\\", // control chars and JSON escapes
  "", // empty string is kept by JSON.stringify
];

const payloads = [];
for (const [version, router] of [
  ["4.58.0", true],
  ["5.0.12", false],
]) {
  for (const id of projectIds) payloads.push(telemetry(version, router, id));
}
// Bare strings (no telemetry wrapper) whose encodings hit +, / and both = paddings.
payloads.push("?>?", "~~~", ">>", "?", "café", "€", { x: "ÿ" });

const vectors = payloads.map((payload) => {
  const json = JSON.stringify(payload);
  let b64 = null;
  let btoaError = null;
  try {
    b64 = btoa(json);
  } catch (err) {
    btoaError = `${err.name}: ${err.message}`;
  }
  return {
    payload: JSON.parse(json), // what survives stringify (undefined projectId removed)
    json,
    btoa: b64,
    btoa_error: btoaError,
    buffer: Buffer.from(json).toString("base64"),
  };
});

const out = JSON.stringify(vectors, null, 2) + "\n";
if (process.argv[2]) writeFileSync(process.argv[2], out);
else process.stdout.write(out);
