import { afterEach, describe, expect, it } from "vitest";
import { call, createKey, createProduct, json } from "../helpers/harness";
import { stubOrigin } from "../helpers/origin";

describe("smoke", () => {
  let origin: ReturnType<typeof stubOrigin>;
  afterEach(() => origin?.restore());

  it("forwards a call with a valid ilal key and injects authMethod", async () => {
    origin = stubOrigin();
    const product = await createProduct();
    const { key, record } = await createKey();
    const response = await call(`${product.pathPrefix}/hello?x=1`, { headers: { "X-API-Key": key } });
    const body = await json(response);
    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(response.headers.get("X-Auth-Method")).toBe("api_key");
    expect(body.authMethod).toBe("api_key");
    expect(origin.received).toHaveLength(1);
    expect(origin.received[0]!.headers.get("x-auth-key-id")).toBe(record.id);
    expect(origin.received[0]!.headers.get("x-api-key")).toBeNull();
  });

  it("refuses a call with no credentials and reaches no origin", async () => {
    origin = stubOrigin();
    const product = await createProduct();
    const response = await call(`${product.pathPrefix}/hello`);
    expect(response.status).toBe(401);
    expect((await json(response)).code).toBe("AUTH_MISSING");
    expect(origin.received).toHaveLength(0);
  });
});
