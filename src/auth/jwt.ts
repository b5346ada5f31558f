import type { Config } from "../config";
import { GatewayError } from "../errors";
import type { Principal } from "./principal";

/** JWT verification with jose. Issue #4 replaces this refusal with real verification. */
export async function verifyJwt(_token: string, _config: Config, _now: number): Promise<Extract<Principal, { method: "jwt" }>> {
  throw new GatewayError("JWT_SIGNATURE_INVALID", { message: "JWT verification is not available yet" });
}
