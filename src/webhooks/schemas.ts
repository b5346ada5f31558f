import * as z from "../zod";
import { WEBHOOK_EVENT_TYPES } from "./events";

/**
 * The webhook admin API's zod schemas: the handlers validate with them and
 * GET /openapi.json is generated from them. Request bodies are strict
 * objects, as in src/routes/schemas.ts.
 */

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** Why a webhook URL is refused, or undefined: https anywhere, http only to this machine (local development). */
export function webhookUrlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return "must be an absolute URL";
  }
  if (url.username !== "" || url.password !== "") return "must not carry credentials (user:password@)";
  if (url.hash !== "") return "must not have a #fragment";
  if (url.protocol === "https:") return undefined;
  if (url.protocol === "http:" && LOOPBACK_HOSTS.has(url.hostname)) return undefined;
  return "must be https (http only for localhost and 127.0.0.1)";
}

const webhookUrl = z.string().check(
  z.maxLength(2000),
  z.superRefine((value, ctx) => {
    const problem = webhookUrlProblem(value);
    if (problem) ctx.addIssue({ code: "custom", message: problem, input: value });
  }),
  z.describe("Where events are POSTed: https (http only for localhost and 127.0.0.1)"),
);

const description = z.string().check(z.trim(), z.maxLength(500));

const EVENTS_DESCRIPTION = 'The event types delivered to this endpoint, or ["*"] (the default) for every type';

/** A list of event types, or exactly ["*"]. */
const eventList = z.array(z.union([z.literal("*"), z.enum(WEBHOOK_EVENT_TYPES)])).check(
  z.minLength(1, 'must name at least one event type, or ["*"] for all (to pause an endpoint, set enabled: false)'),
  z.maxLength(WEBHOOK_EVENT_TYPES.length + 1),
  z.refine((list) => !list.includes("*") || list.length === 1, '"*" must be the list\'s only entry'),
  z.describe(EVENTS_DESCRIPTION),
);

export const WebhookEndpointCreateSchema = z.strictObject({
  url: webhookUrl,
  description: z.optional(description),
  events: z.optional(eventList),
});
export type WebhookEndpointCreateInput = z.infer<typeof WebhookEndpointCreateSchema>;

export const WebhookEndpointPatchSchema = z
  .strictObject({
    url: z.optional(webhookUrl),
    description: z.optional(z.nullable(description)),
    events: z.optional(eventList),
    enabled: z.optional(z.boolean()),
  })
  .check(z.refine<object>((body) => Object.keys(body).length > 0, "must change at least one field"));
export type WebhookEndpointPatchInput = z.infer<typeof WebhookEndpointPatchSchema>;

// ---- Responses ----

const authMethod = z.enum(["api_key", "jwt", "admin_token"]);
const isoTime = z.string().check(z.describe("ISO 8601 time"));

export const WebhookEndpointViewSchema = z.object({
  id: z.string(),
  url: z.string(),
  description: z.nullable(z.string()),
  events: z.array(z.string()).check(z.describe(EVENTS_DESCRIPTION)),
  enabled: z.boolean(),
  createdAt: isoTime,
  updatedAt: isoTime,
  createdBy: z.string().check(z.describe('The admin who created it: "admin_token" or "user:<id>"')),
});

const secret = z
  .string()
  .check(
    z.describe('The Standard Webhooks signing secret ("whsec_" + base64): verify each delivery\'s webhook-signature with it. Shown here once, never again'),
  );

export const WebhookEndpointResponseSchema = z.extend(WebhookEndpointViewSchema, { authMethod });
export const WebhookEndpointCreatedSchema = z.extend(WebhookEndpointResponseSchema, { secret });
export const WebhookEndpointListSchema = z.object({ authMethod, endpoints: z.array(WebhookEndpointViewSchema) });
export const WebhookEndpointDeletedSchema = z.object({ authMethod, id: z.string(), deleted: z.literal(true) });
