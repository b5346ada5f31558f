import * as z from "zod/mini";
import { en } from "zod/locales";

/**
 * zod for the whole Worker: the functional `zod/mini` API, which bundles only
 * the schemas and checks we call (the classic API drags every method of every
 * schema into the Worker). zod/mini loads no locale, so every issue would read
 * "Invalid input"; English keeps the messages clients see.
 */
z.config(en());

export * from "zod/mini";
