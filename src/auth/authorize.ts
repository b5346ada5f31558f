/**
 * @module
 * Authorization steps shared by every door into keygate (product calls and
 * management calls), after a credential has been verified.
 */
import { GatewayError } from "../errors";
import { ipAllowed } from "./ip-allowlist";
import type { Principal } from "./principal";

/** An API key used from outside its IP allowlist; JWTs carry no allowlist. */
export function ipRefusal(principal: Principal, clientIp: string | null): GatewayError | undefined {
  if (principal.method === "api_key" && !ipAllowed(clientIp, principal.key.ipAllowlist)) return new GatewayError("IP_NOT_ALLOWED");
  return undefined;
}
