import { describe, expect, it } from "vitest";
import { limiterName, type Principal } from "../../../src/auth/principal";
import type { KeyRecord } from "../../../src/db/keys";
import { isApiKeyCredential, limiterNames } from "../../../src/limits/names";

const jwt = (issuer: Extract<Principal, { method: "jwt" }>["issuer"], subject: string): Principal => ({
  method: "jwt",
  issuer,
  subject,
  scopes: [],
  userId: issuer === "keygate" ? subject : null,
  role: issuer === "keygate" ? "user" : null,
  email: null,
  products: ["*"],
  grantVersion: 0,
});

describe("limiterNames", () => {
  it("names keys, users and third parties' subjects apart", () => {
    expect(limiterNames.key("k1")).toBe("key:k1");
    expect(limiterNames.user("u1")).toBe("user:u1");
    expect(limiterNames.subject("hs256", "u1")).toBe("sub:hs256:u1");
    expect(limiterNames.subject("jwks:https://idp.example", "u1")).toBe("sub:jwks:https%3A%2F%2Fidp.example:u1");
    expect(limiterNames.subject("jwks", "u1")).toBe("sub:jwks::u1");
  });

  it("keeps the issuer's boundary: a ':' in iss or sub cannot make two JWKS subjects share a name", () => {
    const names = [
      limiterNames.subject("jwks:a:b", "c"),
      limiterNames.subject("jwks:a", "b:c"),
      // No iss: an empty issuer segment, which a present iss (1 to 255 characters) never gives.
      limiterNames.subject("jwks", "a:b:c"),
    ];
    expect(new Set(names).size).toBe(names.length);
  });

  it("keeps the address and account throttle names as they were", () => {
    expect(limiterNames.address("203.0.113.7")).toBe("ip:203.0.113.7");
    expect(limiterNames.account("Ada@Example.com")).toBe("email:ada@example.com");
  });
});

describe("limiterName", () => {
  it("gives a keygate user and a third party with the same sub different objects (F7)", () => {
    const id = crypto.randomUUID();
    expect([limiterName(jwt("keygate", id)), limiterName(jwt("hs256", id)), limiterName(jwt("jwks:keygate", id))]).toEqual([
      `user:${id}`,
      `sub:hs256:${id}`,
      `sub:jwks:keygate:${id}`,
    ]);
  });

  it("names an API key's object by its lineage: the first key of its rotation chain", () => {
    const first = crypto.randomUUID();
    const key = { id: first, lineageId: first } as KeyRecord;
    const replacement = { id: crypto.randomUUID(), lineageId: first } as KeyRecord;
    expect(limiterName({ method: "api_key", key })).toBe(`key:${first}`);
    expect(limiterName({ method: "api_key", key: replacement })).toBe(`key:${first}`);
  });
});

describe("isApiKeyCredential", () => {
  it("tells a key's bare id from a JWT principal's limiter name, old `sub:` names included", () => {
    expect(isApiKeyCredential(crypto.randomUUID())).toBe(true);
    expect(isApiKeyCredential(limiterNames.user("u1"))).toBe(false);
    expect(isApiKeyCredential(limiterNames.subject("hs256", "u1"))).toBe(false);
    expect(isApiKeyCredential("sub:legacy-subject")).toBe(false);
  });
});
