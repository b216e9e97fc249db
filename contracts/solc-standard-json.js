// Runs the pinned solcjs (node_modules/solc) on a standard-JSON input read from stdin.
// `node solc-standard-json.js --version` prints the compiler version.
"use strict";
const fs = require("fs");
const solc = require("solc");
if (process.argv.includes("--version")) {
  process.stdout.write(solc.version() + "\n");
} else {
  process.stdout.write(solc.compile(fs.readFileSync(0, "utf8")));
}
