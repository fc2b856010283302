// Builds one fixture app with esbuild. Run from the app directory (refine4/,
// refine3jwe/, ...), e.g. `npm run build`, which is `node ../build.mjs`.
//
// Output (in <app>/dist/):
//   index.html + app.js        production bundle (process.env.NODE_ENV = "production")
//   dev.html   + app.dev.js    development bundle (React dev mode: StrictMode double effects)
//
// Packages are resolved from the app's own node_modules, so the shared source in
// ../src/ is bundled against that app's refine core. The app depends on exactly
// one of @refinedev/core (4.x, 5.x) or @pankod/refine-core (3.x); src/app.jsx
// imports "fixture-refine-core", aliased here to whichever it is.
import { createRequire } from "node:module";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const appDir = process.cwd();
const here = path.dirname(fileURLToPath(import.meta.url));
const requireFromApp = createRequire(path.join(appDir, "package.json"));
const esbuild = requireFromApp("esbuild");

const CORE_PACKAGES = ["@refinedev/core", "@pankod/refine-core"];
const nodeModules = path.join(appDir, "node_modules");
const appPkg = JSON.parse(readFileSync(path.join(appDir, "package.json"), "utf8"));
const cores = CORE_PACKAGES.filter((name) => name in appPkg.dependencies);
if (cores.length !== 1) {
  console.error(`package.json must depend on exactly one of ${CORE_PACKAGES.join(", ")}; found ${cores.length}`);
  process.exit(1);
}
const coreName = cores[0];
const wanted = appPkg.dependencies[coreName];
const corePkg = JSON.parse(
  readFileSync(path.join(nodeModules, ...coreName.split("/"), "package.json"), "utf8"),
);
if (corePkg.version !== wanted) {
  console.error(`installed ${coreName} ${corePkg.version} != package.json ${wanted}; run npm ci`);
  process.exit(1);
}
const coreMajor = Number(corePkg.version.split(".")[0]);

const dist = path.join(appDir, "dist");
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

const html = (script, mode) => `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>fixture loading: ${coreName} ${corePkg.version}</title>
    <meta name="fixture-refine-package" content="${coreName}" />
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
    alias: { "fixture-refine-core": coreName },
    define: {
      "process.env.NODE_ENV": JSON.stringify(b.mode),
      __FIXTURE_REFINE_PACKAGE__: JSON.stringify(coreName),
      __FIXTURE_REFINE_VERSION__: JSON.stringify(corePkg.version),
      __FIXTURE_REFINE_MAJOR__: JSON.stringify(coreMajor),
    },
  });
  writeFileSync(path.join(dist, b.page), html(b.outfile, b.mode));
}
console.log(`built ${path.relative(here, dist)} (${coreName} ${corePkg.version})`);
