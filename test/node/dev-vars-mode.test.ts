import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

/**
 * F11: the secrets file `npm start` writes (.dev.vars, or KEYGATE_DEV_VARS,
 * both through ensureDevVars) is owner-only (0600) whether it is created or
 * appended to. POSIX modes only: Windows has none to check.
 */

interface SecretsModule {
  REQUIRED_SECRETS: string[];
  ensureDevVars(file: string): Promise<{ values: Record<string, string>; added: string[] }>;
  parseDotEnv(text: string): Record<string, string>;
}

// A computed specifier: the node project's tsconfig does not type-check scripts/ (the e2e one does).
const secretsModule = path.resolve(import.meta.dirname, "../../scripts/lib/secrets.mjs");
const { REQUIRED_SECRETS, ensureDevVars, parseDotEnv } = (await import(secretsModule)) as SecretsModule;

const mode = (file: string) => statSync(file).mode & 0o777;

describe.skipIf(process.platform === "win32")("ensureDevVars file mode", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "keygate-dev-vars-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("tightens an existing 0644 file to 0600 before appending the missing secrets", async () => {
    const file = path.join(dir, ".dev.vars");
    writeFileSync(file, "JWT_SECRET='a-developer-chosen-secret-0123456789abcdef'\n");
    chmodSync(file, 0o644); // as a umask of 022 leaves a hand-made file
    expect(mode(file)).toBe(0o644);

    const { added, values } = await ensureDevVars(file);

    expect(mode(file).toString(8)).toBe("600");
    expect(added).toEqual(REQUIRED_SECRETS);
    const stored = parseDotEnv(readFileSync(file, "utf8"));
    expect(stored.JWT_SECRET, "the developer's own value stays").toBe("a-developer-chosen-secret-0123456789abcdef");
    for (const name of REQUIRED_SECRETS) {
      expect(stored[name], name).toBeTruthy();
      expect(stored[name], name).toBe(values[name]);
    }
  });

  it("tightens an existing empty 0644 file too (it is written, not created)", async () => {
    const file = path.join(dir, "empty.vars");
    writeFileSync(file, "");
    chmodSync(file, 0o644);
    await ensureDevVars(file);
    expect(mode(file).toString(8)).toBe("600");
    expect(Object.keys(parseDotEnv(readFileSync(file, "utf8"))).sort()).toEqual([...REQUIRED_SECRETS].sort());
  });

  it("creates a missing file (any path, as KEYGATE_DEV_VARS gives) with mode 0600 and every secret", async () => {
    const file = path.join(dir, "keygate.vars");
    const { added } = await ensureDevVars(file);
    expect(mode(file).toString(8)).toBe("600");
    expect(added).toEqual(REQUIRED_SECRETS);
    expect(Object.keys(parseDotEnv(readFileSync(file, "utf8"))).sort()).toEqual([...REQUIRED_SECRETS].sort());
  });

  it("leaves a complete file's content alone", async () => {
    const file = path.join(dir, ".dev.vars");
    await ensureDevVars(file);
    const before = readFileSync(file, "utf8");
    const { added } = await ensureDevVars(file);
    expect(added).toEqual([]);
    expect(readFileSync(file, "utf8")).toBe(before);
  });
});
