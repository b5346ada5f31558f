import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * `npm test` starts with scripts/ensure-chromium.mjs: with chromium present it
 * says nothing and lets the run go on; with chromium missing and no way to
 * install it, it stops at once with one line saying what to run.
 */
const SCRIPT = new URL("../../scripts/ensure-chromium.mjs", import.meta.url).pathname;

function run(env: Record<string, string>) {
  return spawnSync(process.execPath, [SCRIPT], { encoding: "utf8", env: { ...env, HOME: tmpdir() } });
}

describe("scripts/ensure-chromium.mjs", () => {
  it("passes silently when the browser is there", () => {
    const result = run({ KEYGATE_CHROMIUM: process.execPath, PATH: process.env.PATH ?? "" });
    expect(result.status).toBe(0);
    expect(result.stdout + result.stderr).toBe("");
  });

  it("stops at once with one line saying what to run when the browser is missing and cannot be installed", () => {
    // A PATH with no apt-get and no sudo: nothing can install it.
    const emptyPath = mkdtempSync(join(tmpdir(), "keygate-no-apt-"));
    const result = run({ KEYGATE_CHROMIUM: join(emptyPath, "chromium"), PATH: emptyPath });
    expect(result.status).toBe(1);
    expect(result.stdout).toBe("");
    const lines = result.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("sudo apt-get install -y chromium");
    expect(lines[0]).toContain(join(emptyPath, "chromium"));
  });
});
