// A local superplate source for the create-refine-app tests. The real templates
// are downloaded from GitHub (codeload.github.com), which the tests must not
// need; superplate takes a local `--source` directory of the same layout:
// <type>/prompt.js, <type>/template/, <type>/plugins/_base/, and presets here.
// The preset answers every question but the email, which create-refine-app
// asks itself (that prompt is the one the tests type into).
module.exports = {
  presets: [{ name: "qa", type: "refine-vite", answers: { ui: "no" } }],
};
