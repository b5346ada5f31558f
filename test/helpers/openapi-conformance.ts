import Ajv2020, { type ValidateFunction } from "ajv/dist/2020";
import { TrieRouter } from "hono/router/trie-router";
import { app } from "../../src/app";
import { buildOpenApiDocument, HEADERS, openApiPath } from "../../src/openapi/document";

/**
 * Every answer an own endpoint gives in the workers suite is held to
 * /openapi.json: its status must be documented for the operation, a JSON body
 * must validate (ajv, JSON Schema 2020-12) against that status's schema, with
 * no field the document does not name on an error, and every keygate header it
 * carries must be documented for that status. `call()` (harness.ts), the one
 * door of the suite's requests, runs this on each answer, so a route, code,
 * field or header the document misses fails the test that produced it.
 */

interface Operation {
  method: string;
  path: string;
  responses: Record<string, { headers?: Record<string, unknown>; content?: Record<string, { schema: unknown }> }>;
}

interface Conformance {
  router: TrieRouter<Operation>;
  ajv: Ajv2020;
  validators: Map<string, ValidateFunction>;
}

let conformance: Conformance | undefined;

function load(): Conformance {
  const document = buildOpenApiDocument(app.routes, { serverUrl: "https://gateway.test" }) as {
    paths: Record<string, Record<string, Omit<Operation, "method" | "path">>>;
    components: { schemas: { Error: Record<string, unknown> } };
  };
  // Strict for errors: a refusal's every field is named in the Error schema.
  document.components.schemas.Error.additionalProperties = false;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addSchema(document, "openapi.json");
  const router = new TrieRouter<Operation>();
  for (const route of app.routes) {
    const method = route.method.toLowerCase();
    const operation = document.paths[openApiPath(route.path)]?.[method];
    if (route.method !== "ALL" && operation) router.add(route.method, route.path, { method, path: openApiPath(route.path), ...operation });
  }
  return { router, ajv, validators: new Map() };
}

function operationFor(method: string, pathname: string): Operation | undefined {
  conformance ??= load();
  const [matched] = conformance.router.match(method === "HEAD" ? "GET" : method, pathname);
  return matched[0]?.[0];
}

const pointer = (segment: string) => segment.replaceAll("~", "~0").replaceAll("/", "~1");

function validatorFor(operation: Operation, status: string, mediaType: string): ValidateFunction {
  const id = `openapi.json#/paths/${pointer(operation.path)}/${operation.method}/responses/${status}/content/${pointer(mediaType)}/schema`;
  let validate = conformance!.validators.get(id);
  if (!validate) {
    validate = conformance!.ajv.compile({ $ref: id });
    conformance!.validators.set(id, validate);
  }
  return validate;
}

/** Every header keygate sets (the document's components.headers): an own answer may carry only those its status documents. */
const KEYGATE_HEADERS = Object.keys(HEADERS).map((name) => name.toLowerCase());

/** Throws, naming what the document misses, when an own endpoint's answer does not conform. */
export async function assertConformsToOpenApi(request: Request, response: Response): Promise<void> {
  const url = new URL(request.url);
  const operation = operationFor(request.method, url.pathname);
  if (!operation) return; // a product call, or a method the path does not list (405)
  const where = `${request.method} ${url.pathname} → ${response.status}`;
  const documented = operation.responses[String(response.status)];
  if (!documented) throw new Error(`OpenAPI: ${where} is not a documented status of ${operation.method.toUpperCase()} ${operation.path}`);

  const headerNames = new Set(Object.keys(documented.headers ?? {}).map((name) => name.toLowerCase()));
  const undocumented = KEYGATE_HEADERS.filter((name) => response.headers.has(name) && !headerNames.has(name));
  if (undocumented.length) throw new Error(`OpenAPI: ${where} carries undocumented headers ${undocumented.join(", ")}`);
  if (!response.headers.has("x-request-id")) throw new Error(`OpenAPI: ${where} lacks X-Request-Id`);

  const mediaType = response.headers.get("content-type")?.split(";")[0]?.trim() ?? "";
  const content = documented.content;
  if (!content) return;
  if (!content[mediaType]) throw new Error(`OpenAPI: ${where} answers ${mediaType || "no content type"}, documented: ${Object.keys(content).join(", ")}`);
  if (mediaType !== "application/json" || request.method === "HEAD") return;
  const body = JSON.parse(await response.clone().text()) as unknown;
  const validate = validatorFor(operation, String(response.status), mediaType);
  if (!validate(body)) {
    throw new Error(`OpenAPI: ${where} body does not match the document: ${JSON.stringify(validate.errors)}\n${JSON.stringify(body).slice(0, 500)}`);
  }
}
