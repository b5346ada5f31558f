import { WorkerEntrypoint } from "cloudflare:workers";
import { getConfig } from "./config";
import type { Env } from "./env";
import { isGatewayError } from "./errors";
import { fieldErrors } from "./middleware/validate";
import { type VerifyAnswer, VerifyRequestSchema } from "./routes/schemas";
import { verifyKey } from "./verify";

/**
 * keygate as a Workers RPC service: a Worker in the same account binds to it
 * (`services = [{ binding = "KEYGATE", service = "keygate", entrypoint = "KeygateService" }]`)
 * and calls `await env.KEYGATE.verify({ key, product?, scopes?, consume?, ip? })`,
 * with no HTTP and no service credential: the binding, which only the account's
 * operator can configure, is the authority. The same checks and counting as
 * POST /api/v1/keys/verify (src/verify.ts). A request it cannot judge throws a
 * KeygateRpcError-shaped Error: `message` is JSON `{code, message, fields?}`.
 */
export class KeygateService extends WorkerEntrypoint<Env> {
  async verify(input: unknown): Promise<VerifyAnswer> {
    const parsed = VerifyRequestSchema.safeParse(input);
    if (!parsed.success) throw rpcError("VALIDATION_FAILED", "The verify request is invalid", { fields: fieldErrors(parsed.error.issues) });
    try {
      // Inside the try: a misconfigured gateway is a coded CONFIG_INVALID to the caller too.
      return await verifyKey(this.env, getConfig(this.env), parsed.data, crypto.randomUUID(), Date.now(), (work) => this.ctx.waitUntil(work));
    } catch (error) {
      if (isGatewayError(error)) throw rpcError(error.code, error.message);
      throw error;
    }
  }
}

/** Errors cross RPC as their message only: carry the code in it, as JSON. */
function rpcError(code: string, message: string, extra: Record<string, unknown> = {}): Error {
  return new Error(JSON.stringify({ code, message, ...extra }));
}
