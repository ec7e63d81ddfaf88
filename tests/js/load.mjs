// Imports the page's ES modules from static/ as they are served. Node decides a .js file's
// module type from the nearest package.json, and static/ has none (older Node then reads it
// as CommonJS), so the files are copied once into a temporary folder that declares ES modules.
import { cpSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { webcrypto } from "node:crypto";

export const STATIC = fileURLToPath(new URL("../../static/", import.meta.url));

let copy = null;

export function importStatic(relativePath) {
  if (!copy) {
    copy = mkdtempSync(join(tmpdir(), "gateway-static-"));
    cpSync(STATIC, copy, { recursive: true });
    writeFileSync(join(copy, "package.json"), '{"type": "module"}\n');
  }
  // Node 18 has no global `crypto`; browsers (and the scripts) expect one.
  if (!globalThis.crypto) globalThis.crypto = webcrypto;
  return import(pathToFileURL(join(copy, relativePath)).href);
}
