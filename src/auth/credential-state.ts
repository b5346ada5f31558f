/**
 * @module
 * A credential's state (active / inactive / revoked, and when it stops
 * working) and the one mapping from that state to the refusal a caller gets.
 * Used by the key check on a cached row, by the limiter object's verdict on
 * product calls, and by the liveness check on management calls.
 */
import { GatewayError } from "../errors";

/** What decides whether a credential works (the limiter object's CredentialState has these fields). */
interface Lifecycle {
  status: "active" | "inactive" | "revoked";
  /** Epoch ms from which the credential is expired (expiry or end of a rotation's grace); null = never. */
  notAfter: number | null;
}

/** Why a credential in this state cannot be used now, or undefined when it can. */
export type CredentialStateOutcome = "inactive" | "revoked" | "expired";

export function credentialStateOutcome(state: Lifecycle, now: number): CredentialStateOutcome | undefined {
  if (state.status !== "active") return state.status;
  if (state.notAfter !== null && now >= state.notAfter) return "expired";
  return undefined;
}

/** The refusal for an unusable credential: API_KEY_* for keys, JWT_* for a token's subject. */
export function credentialRefusal(outcome: CredentialStateOutcome, method: "api_key" | "jwt"): GatewayError {
  if (method === "api_key") return new GatewayError(outcome === "expired" ? "API_KEY_EXPIRED" : "API_KEY_INACTIVE");
  if (outcome === "expired") return new GatewayError("JWT_EXPIRED");
  return new GatewayError("JWT_CLAIM_INVALID", { message: "The token's user has been deleted or their access changed; sign in again" });
}
