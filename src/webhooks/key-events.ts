import { nowIso } from "../db/json";
import type { KeyRecord } from "../db/keys";
import type { WebhookEvent } from "./events";

/**
 * The key lifecycle events the keys API (and the expiry cron) publish, and
 * what makes each unique: a key is created once (period: its id), rotated
 * once (its replacement's id), revoked once (revocation is final), and warned
 * of once per expiry of its lineage (a rotation's replacement keeps the
 * lineage and the expiry, so it is not warned again; a moved expiry is).
 * `data` names the key and never holds its hash or plaintext.
 */
export type KeyFacts = Pick<KeyRecord, "id" | "lineageId" | "prefix" | "name" | "ownerId" | "env" | "expiresAt">;

function keyData(key: KeyFacts): Record<string, unknown> {
  return { keyId: key.id, lineageId: key.lineageId, prefix: key.prefix, name: key.name, ownerId: key.ownerId, env: key.env, expiresAt: key.expiresAt };
}

export function keyCreatedEvent(key: KeyFacts & Pick<KeyRecord, "products" | "scopes">, actor: string, now: number): WebhookEvent {
  return {
    type: "key.created",
    subject: `key:${key.id}`,
    period: key.id,
    occurredAt: nowIso(now),
    data: { ...keyData(key), products: key.products, scopes: key.scopes, actor },
  };
}

export function keyRotatedEvent(key: KeyFacts, replacement: Pick<KeyRecord, "id" | "prefix">, graceUntil: string, actor: string, now: number): WebhookEvent {
  return {
    type: "key.rotated",
    subject: `key:${key.id}`,
    period: replacement.id,
    occurredAt: nowIso(now),
    data: { ...keyData(key), replacementKeyId: replacement.id, replacementPrefix: replacement.prefix, graceUntil, actor },
  };
}

export function keyRevokedEvent(key: KeyFacts, actor: string, now: number, reason?: string): WebhookEvent {
  return {
    type: "key.revoked",
    subject: `key:${key.id}`,
    period: "revoked",
    occurredAt: nowIso(now),
    data: { ...keyData(key), actor, ...(reason === undefined ? {} : { reason }) },
  };
}

export function keyExpiringEvent(key: KeyFacts & { expiresAt: string }, now: number): WebhookEvent {
  return {
    type: "key.expiring",
    subject: `key:${key.lineageId}`,
    period: key.expiresAt,
    occurredAt: nowIso(now),
    data: { ...keyData(key), expiresInSeconds: Math.max(0, Math.round((Date.parse(key.expiresAt) - now) / 1000)) },
  };
}
