// Builds one fixture app with esbuild. Run from the app directory (refine4/ or
// refine5/), e.g. `npm run build`, which is `node ../build.mjs`.
//
// Output (in <app>/dist/):
//   index.html + app.js        production bundle (process.env.NODE_ENV = "production")
//   dev.html   + app.dev.js    development bundle (React dev mode: StrictMode double effects)
//
// Packages are resolved from the app's own node_modules, so the shared source in
// ../src/ is bundled against that app's @refinedev/core version.
import { createRequire } from "node:module";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const appDir = process.cwd();
const here = path.dirname(fileURLToPath(import.meta.url));
const requireFromApp = createRequire(path.join(appDir, "package.json"));
const esbuild = requireFromApp("esbuild");

const nodeModules = path.join(appDir, "node_modules");
const corePkg = JSON.parse(
  readFileSync(path.join(nodeModules, "@refinedev", "core", "package.json"), "utf8"),
);
const appPkg = JSON.parse(readFileSync(path.join(appDir, "package.json"), "utf8"));
const wanted = appPkg.dependencies["@refinedev/core"];
if (corePkg.version !== wanted) {
  console.error(`installed @refinedev/core ${corePkg.version} != package.json ${wanted}; run npm ci`);
  process.exit(1);
}

const dist = path.join(appDir, "dist");
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

const html = (script, mode) => `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>fixture loading: refine ${corePkg.version}</title>
    <meta name="fixture-refine-version" content="${corePkg.version}" />
    <meta name="fixture-mode" content="${mode}" />
  </head>
  <body>
    <div id="root"></div>
    <script src="./${script}"></script>
  </body>
</html>
`;

const builds = [
  { mode: "production", outfile: "app.js", page: "index.html", minify: true },
  { mode: "development", outfile: "app.dev.js", page: "dev.html", minify: false },
];

for (const b of builds) {
  await esbuild.build({
    entryPoints: [path.join(here, "src", "app.jsx")],
    outfile: path.join(dist, b.outfile),
    bundle: true,
    format: "iife",
    platform: "browser",
    target: ["es2020"],
    jsx: "automatic",
    minify: b.minify,
    sourcemap: false,
    legalComments: "none",
    logLevel: "warning",
    nodePaths: [nodeModules],
    define: {
      "process.env.NODE_ENV": JSON.stringify(b.mode),
      __FIXTURE_REFINE_VERSION__: JSON.stringify(corePkg.version),
    },
  });
  writeFileSync(path.join(dist, b.page), html(b.outfile, b.mode));
}
console.log(`built ${path.relative(here, dist)} (@refinedev/core ${corePkg.version})`);
