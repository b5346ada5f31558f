import { env } from "cloudflare:workers";
import { hashPassword } from "../../src/auth/password";
import { insertUserStatement, type UserRecord } from "../../src/db/users";

/** A users row with a unique email and a real PBKDF2 hash; returns the plaintext password too. */
export async function createUser(overrides: Partial<UserRecord> & { password?: string } = {}): Promise<{ user: UserRecord; password: string }> {
  const { password = `pw-${crypto.randomUUID()}`, ...fields } = overrides;
  const now = new Date().toISOString();
  const user: UserRecord = {
    id: crypto.randomUUID(),
    email: `user-${crypto.randomUUID().slice(0, 8)}@example.com`,
    passwordHash: await hashPassword(password),
    role: "user",
    products: ["*"],
    scopes: ["*"],
    createdAt: now,
    updatedAt: now,
    rateLimitPerMinute: null,
    rateLimitPerDay: null,
    maxActiveKeys: null,
    ...fields,
  };
  await insertUserStatement(env.DB, user).run();
  return { user, password };
}
