import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { generateKey } from "../../src/auth/key-format";

const root = path.resolve(import.meta.dirname, "../..");

/** The rules' regexes, read from .gitleaks.toml (``regex = '''…'''`` lines). */
function scanningRules(): { id: string; regex: RegExp }[] {
  const toml = readFileSync(path.join(root, ".gitleaks.toml"), "utf8");
  const rules: { id: string; regex: RegExp }[] = [];
  for (const block of toml.split("[[rules]]").slice(1)) {
    const id = /^id = "([^"]+)"/m.exec(block)?.[1];
    const source = /^regex = '''(.+)'''$/m.exec(block)?.[1];
    if (!id || !source) throw new Error(`incomplete rule: ${block}`);
    rules.push({ id, regex: new RegExp(source, "g") });
  }
  return rules;
}

describe("secret-scanning rules", () => {
  const rules = scanningRules();

  it("define one rule per key format", () => {
    expect(rules.map((rule) => rule.id).sort()).toEqual(["keygate-ila-api-key", "keygate-ilal-api-key"]);
  });

  it("match every generated key of every format and environment, in running text", () => {
    for (let i = 0; i < 200; i++) {
      for (const key of [generateKey("ilal", "live"), generateKey("ilal", "test"), generateKey("ila")]) {
        const text = `export KEYGATE_KEY="${key}" # leaked`;
        const hits = rules.flatMap((rule) => [...text.matchAll(rule.regex)].map((match) => match[0]));
        expect(hits, key).toEqual([key]);
      }
    }
  });

  it("do not match near-misses: display prefixes, short or uppercase keys", () => {
    const nearMisses = [
      "ilal_live_3f9a1c2b",
      "ila_Q7xK2mPz",
      `ilal_live_${"A".repeat(48)}`,
      `ilal_prod_${"a".repeat(48)}`,
      `ilal_live_${"a".repeat(47)}`,
      `ila_${"a".repeat(71)}`,
    ];
    for (const text of nearMisses) {
      expect(
        rules.some((rule) => new RegExp(rule.regex.source).test(text)),
        text,
      ).toBe(false);
    }
  });

  it("find nothing in the files this repository tracks", () => {
    const files = execFileSync("git", ["ls-files", "-z"], { cwd: root, encoding: "utf8" }).split("\0").filter(Boolean);
    expect(files.length).toBeGreaterThan(10);
    const leaks: string[] = [];
    for (const file of files) {
      let text: string;
      try {
        text = readFileSync(path.join(root, file), "utf8");
      } catch {
        continue; // deleted in the work tree
      }
      for (const rule of rules) for (const match of text.matchAll(rule.regex)) leaks.push(`${file}: ${rule.id}: ${match[0].slice(0, 14)}…`);
    }
    expect(leaks).toEqual([]);
  });
});
