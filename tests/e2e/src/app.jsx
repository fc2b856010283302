// Shared entry for every fixture app (refine3jwe/, refine3/, refine428/, refine4/, refine5/).
//
// One bundle per refine core version covers every end-to-end scenario: the
// <Refine> props are chosen from the page URL query at run time. Which props a
// version reads is that version's business (see fixture_apps.py): the same
// variant sends or not depending on the core it was built against.
//
//   ?variant=default                       plain <Refine dataProvider resources=[2]>
//   ?variant=optout                        options={{ disableTelemetry: true }}
//   ?variant=toplevel                      top-level disableTelemetry prop
//   ?variant=projectid&projectId=<string>  options={{ projectId }}
//   ?variant=strict                        default props wrapped in <React.StrictMode>
//
// Unknown or missing variant falls back to "default".
import React from "react";
import { createRoot } from "react-dom/client";
// ../build.mjs aliases this to the app's @refinedev/core or @pankod/refine-core.
import { Refine } from "fixture-refine-core";

// Baked in by ../build.mjs from the installed core's package.json.
const REFINE_PACKAGE = __FIXTURE_REFINE_PACKAGE__;
const REFINE_VERSION = __FIXTURE_REFINE_VERSION__;
const REFINE_MAJOR = __FIXTURE_REFINE_MAJOR__;

const VARIANTS = ["default", "optout", "toplevel", "projectid", "strict"];

/** A trivial in-memory data provider: enough for <Refine> to mount. */
const store = {
  posts: [
    { id: 1, title: "First post", categoryId: 1 },
    { id: 2, title: "Second post", categoryId: 2 },
  ],
  categories: [
    { id: 1, title: "News" },
    { id: 2, title: "Notes" },
  ],
};

const rows = (resource) => store[resource] ?? (store[resource] = []);

const dataProvider = {
  getApiUrl: () => "memory://fixture",
  getList: async ({ resource }) => ({ data: rows(resource), total: rows(resource).length }),
  getMany: async ({ resource, ids }) => ({
    data: rows(resource).filter((r) => ids.map(String).includes(String(r.id))),
  }),
  getOne: async ({ resource, id }) => ({
    data: rows(resource).find((r) => String(r.id) === String(id)),
  }),
  create: async ({ resource, variables }) => {
    const row = { id: rows(resource).length + 1, ...variables };
    rows(resource).push(row);
    return { data: row };
  },
  update: async ({ resource, id, variables }) => {
    const row = rows(resource).find((r) => String(r.id) === String(id));
    Object.assign(row ?? {}, variables);
    return { data: row };
  },
  deleteOne: async ({ resource, id }) => {
    const list = rows(resource);
    const i = list.findIndex((r) => String(r.id) === String(id));
    const [row] = i >= 0 ? list.splice(i, 1) : [undefined];
    return { data: row };
  },
};

/**
 * 3.x requires a router provider (it reads routerProvider.RouterComponent and
 * calls useLocation); this inert one renders children in place. 4.x and 5.x
 * run without one, so they get none and their payloads stay as captured.
 */
const legacyRouterProvider = {
  useHistory: () => ({ push: () => {}, replace: () => {}, goBack: () => {} }),
  useLocation: () => ({ pathname: window.location.pathname, search: window.location.search, hash: "" }),
  useParams: () => ({}),
  Prompt: () => null,
  Link: ({ to, children, ...rest }) => (
    <a href={to} {...rest}>
      {children}
    </a>
  ),
};

const resources = [
  { name: "posts", list: "/posts" },
  { name: "categories", list: "/categories" },
];

const query = new URLSearchParams(window.location.search);
const requested = query.get("variant") || "default";
const variant = VARIANTS.includes(requested) ? requested : "default";
const projectId = query.get("projectId") ?? "";

function Ready() {
  React.useEffect(() => {
    document.title = `fixture ready: ${REFINE_PACKAGE} ${REFINE_VERSION} ${variant}`;
    document.body.dataset.fixture = "ready";
  }, []);
  return (
    <main>
      <h1 id="status">fixture ready</h1>
      <dl>
        <dt>{REFINE_PACKAGE}</dt>
        <dd id="refine-version">{REFINE_VERSION}</dd>
        <dt>variant</dt>
        <dd id="variant">{variant}</dd>
        {variant === "projectid" ? (
          <>
            <dt>projectId</dt>
            <dd id="project-id">{projectId}</dd>
          </>
        ) : null}
      </dl>
    </main>
  );
}

function App() {
  const common = REFINE_MAJOR === 3 ? { dataProvider, resources, routerProvider: legacyRouterProvider }
    : { dataProvider, resources };
  switch (variant) {
    case "optout":
      return (
        <Refine {...common} options={{ disableTelemetry: true }}>
          <Ready />
        </Refine>
      );
    case "toplevel":
      // What the public docs page tells users to write: read by 3.x, ignored by 4.x and 5.x.
      return (
        <Refine {...common} disableTelemetry={true}>
          <Ready />
        </Refine>
      );
    case "projectid":
      return (
        <Refine {...common} options={{ projectId }}>
          <Ready />
        </Refine>
      );
    default:
      return (
        <Refine {...common}>
          <Ready />
        </Refine>
      );
  }
}

window.__fixture = { refinePackage: REFINE_PACKAGE, refineVersion: REFINE_VERSION, variant, projectId };

const root = createRoot(document.getElementById("root"));
root.render(
  variant === "strict" ? (
    <React.StrictMode>
      <App />
    </React.StrictMode>
  ) : (
    <App />
  ),
);
