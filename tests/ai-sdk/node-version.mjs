// Says, loudly, when this Node.js is older than the AI SDK packages require (package.json
// `engines`: Node >= 22). It does not stop the tests: they may still pass on an older Node, but that
// is unsupported, and when they fail this message is the first thing to read. Imported first by
// every *.test.mjs here, so it runs before the SDK loads.
const REQUIRED_MAJOR = 22;
const major = Number(process.versions.node.split(".")[0]);

if (major < REQUIRED_MAJOR) {
  const message =
    `tests/ai-sdk: Node ${process.versions.node} is older than the Node >= ${REQUIRED_MAJOR} the AI SDK ` +
    `packages require (tests/ai-sdk/package.json engines); results on it are unsupported. Install Node ` +
    `${REQUIRED_MAJOR} (nodejs.org, or without root: npm install --prefix ~/.local/node${REQUIRED_MAJOR} ` +
    `node@${REQUIRED_MAJOR} and put ~/.local/node${REQUIRED_MAJOR}/node_modules/.bin first on PATH).`;
  console.error(message);
  // Again at exit, so it is also the last line a runner that keeps only the tail of stderr shows.
  process.on("exit", () => console.error(message));
}
