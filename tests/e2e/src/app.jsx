// Shared entry for the refine4/ and refine5/ fixture apps.
//
// One bundle per @refinedev/core version covers every end-to-end scenario: the
// <Refine> props are chosen from the page URL query at run time.
//
//   ?variant=default                       plain <Refine dataProvider resources=[2]>
//   ?variant=optout                        options={{ disableTelemetry: true }}  (no beacon)
//   ?variant=toplevel                      top-level disableTelemetry prop (ignored by refine)
//   ?variant=projectid&projectId=<string>  options={{ projectId }}
//   ?variant=strict                        default props wrapped in <React.StrictMode>
//
// Unknown or missing variant falls back to "default".
import React from "react";
import { createRoot } from "react-dom/client";
import { Refine } from "@refinedev/core";

// Baked in by ../build.mjs from the installed @refinedev/core package.json.
const REFINE_VERSION = __FIXTURE_REFINE_VERSION__;

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
    document.title = `fixture ready: refine ${REFINE_VERSION} ${variant}`;
    document.body.dataset.fixture = "ready";
  }, []);
  return (
    <main>
      <h1 id="status">fixture ready</h1>
      <dl>
        <dt>@refinedev/core</dt>
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
  const common = { dataProvider, resources };
  switch (variant) {
    case "optout":
      return (
        <Refine {...common} options={{ disableTelemetry: true }}>
          <Ready />
        </Refine>
      );
    case "toplevel":
      // What the public docs page tells users to write; refine does not read it.
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

window.__fixture = { refineVersion: REFINE_VERSION, variant, projectId };

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
