import { zValidator } from "@hono/zod-validator";
import type * as z from "../zod";
import { GatewayError } from "../errors";
import { documented } from "../openapi/operation";

/** One refused field: its dotted path in the body ("" = the body itself) and why. */
export interface FieldError {
  path: string;
  message: string;
}

function dotted(path: readonly PropertyKey[]): string {
  return path.map(String).join(".");
}

/**
 * zod issues as fields. An unknown key (a z.strictObject refusing it) is named
 * by its own path, not by the object that holds it.
 */
export function fieldErrors(issues: readonly z.core.$ZodIssue[]): FieldError[] {
  return issues.flatMap((issue) =>
    issue.code === "unrecognized_keys"
      ? issue.keys.map((key) => ({ path: dotted([...issue.path, key]), message: "Unknown field" }))
      : [{ path: dotted(issue.path), message: issue.message }],
  );
}

export function validationError(fields: FieldError[]): GatewayError {
  const named = fields.map((field) => `${field.path || "body"}: ${field.message}`).join("; ");
  return new GatewayError("VALIDATION_FAILED", { message: `The request body is invalid (${named})`, details: { fields } });
}

/**
 * The JSON body validated against a zod schema: 400 VALIDATION_FAILED naming
 * every bad field, through the app's error handler. Unparsable JSON is a 400
 * from Hono that app.ts maps to VALIDATION_FAILED too.
 */
export const validateJson = <T extends z.ZodMiniType>(schema: T, { required = true }: { required?: boolean } = {}) =>
  documented(
    zValidator("json", schema, (result) => {
      if (!result.success) throw validationError(fieldErrors(result.error.issues));
    }),
    { body: { schema, required }, errors: ["VALIDATION_FAILED"] },
  );

/** The query string, likewise (each parameter's value is a string). */
export const validateQuery = <T extends z.ZodMiniType>(schema: T) =>
  documented(
    zValidator("query", schema, (result) => {
      if (!result.success) throw validationError(fieldErrors(result.error.issues));
    }),
    { query: schema, errors: ["VALIDATION_FAILED"] },
  );
