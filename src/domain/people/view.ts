import { alias } from "drizzle-orm/pg-core";
import { people } from "../../db/schema.js";

/** The people table aliased as `p`, the alias compiled conditions refer to. */
export const p = alias(people, "p");

export type PersonRow = typeof people.$inferSelect;

/** A person as the API shows it: ids as strings (people.id is a bigint), timestamps as ISO strings. */
export function personView(row: PersonRow) {
  return {
    id: String(row.id),
    email: row.email,
    externalId: row.externalId,
    username: row.username,
    firstName: row.firstName,
    lastName: row.lastName,
    name: row.name,
    companyId: row.companyId,
    attributes: row.attributes,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    lastSeenAt: row.lastSeenAt?.toISOString() ?? null,
  };
}
export type PersonView = ReturnType<typeof personView>;

/** Parses an API person id; null when it cannot be one (so the caller answers 404, not 500). */
export function parsePersonId(id: string): number | null {
  if (!/^[1-9][0-9]{0,15}$/.test(id)) return null;
  const n = Number(id);
  return Number.isSafeInteger(n) ? n : null;
}
