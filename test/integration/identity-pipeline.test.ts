import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api } from "../helpers/api";
import { createKey } from "../helpers/harness";
import { limiter } from "../helpers/limiter";

/**
 * Security review, code review improvement 3: management and usage calls
 * verify a credential with the same steps as product calls — status, expiry
 * and the IP allowlist included.
 */
describe("one identity pipeline for product and management calls", () => {
  it("an IP-restricted key reading its usage from outside its list gets 403 IP_NOT_ALLOWED; from inside, 200", async () => {
    const { key } = await createKey({ ipAllowlist: ["203.0.113.0/24"] });
    const outside = await api("GET", "/api/v1/usage/stats", { "X-API-Key": key, "CF-Connecting-IP": "198.51.100.1" });
    expect(outside.status, JSON.stringify(outside.body)).toBe(403);
    expect(outside.body.code).toBe("IP_NOT_ALLOWED");
    const inside = await api("GET", "/api/v1/usage/stats", { "X-API-Key": key, "CF-Connecting-IP": "203.0.113.9" });
    expect(inside.status, JSON.stringify(inside.body)).toBe(200);
  });

  it("a key whose object says revoked is refused on usage stats while its row is still cached as active", async () => {
    const { key, record } = await createKey();
    expect((await api("GET", "/api/v1/usage/stats", { "X-API-Key": key })).status).toBe(200); // row now cached
    await limiter(`key:${record.id}`).setKeyState(record.id, { status: "revoked", notAfter: null });
    const answer = await api("GET", "/api/v1/usage/stats", { "X-API-Key": key });
    expect(answer.status).toBe(401);
    expect(answer.body.code).toBe("API_KEY_INACTIVE");
  });

  it("a key past its object's notAfter is refused on usage stats with API_KEY_EXPIRED", async () => {
    const { key, record } = await createKey();
    await limiter(`key:${record.id}`).setKeyState(record.id, { status: "active", notAfter: Date.now() - 1000 });
    const answer = await api("GET", "/api/v1/usage/stats", { "X-API-Key": key });
    expect(answer.status).toBe(401);
    expect(answer.body.code).toBe("API_KEY_EXPIRED");
  });

  it("reads ADMIN_TOKEN with the same Bearer parsing as any credential (scheme case, spaces, surrounding whitespace)", async () => {
    for (const authorization of [`bearer ${env.ADMIN_TOKEN}`, `Bearer  ${env.ADMIN_TOKEN}`, ` BEARER ${env.ADMIN_TOKEN}\t`]) {
      const answer = await api("GET", "/api/v1/admin/products", { Authorization: authorization });
      expect(answer.status, authorization).toBe(200);
      expect(answer.body.authMethod).toBe("admin_token");
    }
  });

  it("refuses an Authorization header holding ADMIN_TOKEN twice as malformed, as for any credential", async () => {
    const answer = await api("GET", "/api/v1/admin/products", { Authorization: `Bearer ${env.ADMIN_TOKEN}, Bearer ${env.ADMIN_TOKEN}` });
    expect(answer.status).toBe(401);
    expect(answer.body.code).toBe("AUTH_HEADER_MALFORMED");
  });

  it("never treats ADMIN_TOKEN as admin when X-API-Key is also sent (X-API-Key is used exclusively)", async () => {
    const answer = await api("GET", "/api/v1/admin/products", { Authorization: `Bearer ${env.ADMIN_TOKEN}`, "X-API-Key": "ilal_live_nope" });
    expect(answer.status).toBe(401);
    expect(answer.body.code).toBe("API_KEY_FORMAT_INVALID");
  });
});
