import { and, asc, eq, gt } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { teamMembers } from "../../db/schema.js";
import { encodeIdCursor } from "../../lib/id-cursor.js";
import { NotFoundError, ValidationError } from "../errors.js";
import { idAfter } from "../paging.js";
import { hashPassword } from "../imports/members/password.js";
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from "../imports/members/validate.js";
import { parsePersonId } from "../people/view.js";

/**
 * Team members as the API manages them one by one (imports of kind `members` write them in bulk). The password
 * hash never leaves this file: every read selects the columns of the view, and `hasPassword` says whether one is set.
 */

type MemberRow = typeof teamMembers.$inferSelect;

/** The columns a member is shown with: everything but the hash, which no query here reads back. */
const VIEW_COLUMNS = {
  id: teamMembers.id,
  email: teamMembers.email,
  firstName: teamMembers.firstName,
  lastName: teamMembers.lastName,
  role: teamMembers.role,
  active: teamMembers.active,
  hasPassword: teamMembers.passwordHash,
  createdAt: teamMembers.createdAt,
  updatedAt: teamMembers.updatedAt,
};
type ViewRow = Pick<MemberRow, "id" | "email" | "firstName" | "lastName" | "role" | "active" | "createdAt" | "updatedAt"> & { hasPassword: string | null };

export function memberView(row: ViewRow) {
  return {
    id: String(row.id),
    email: row.email,
    firstName: row.firstName,
    lastName: row.lastName,
    role: row.role,
    active: row.active,
    hasPassword: row.hasPassword !== null,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}
export type MemberView = ReturnType<typeof memberView>;

/** Team members by id, oldest first. */
export async function listMembers(db: Db, workspaceId: string, q: { limit: number; cursor?: string }) {
  const after = idAfter(q.cursor);
  const rows = await db
    .select(VIEW_COLUMNS)
    .from(teamMembers)
    .where(and(eq(teamMembers.workspaceId, workspaceId), gt(teamMembers.id, after)))
    .orderBy(asc(teamMembers.id))
    .limit(q.limit + 1);
  const data = rows.slice(0, q.limit);
  const last = data[data.length - 1];
  return { data: data.map(memberView), nextCursor: rows.length > q.limit && last ? encodeIdCursor(last.id) : null };
}

export async function getMember(db: Db, workspaceId: string, id: string): Promise<MemberView> {
  const memberId = parsePersonId(id);
  if (memberId === null) throw new NotFoundError("Team member");
  const [row] = await db
    .select(VIEW_COLUMNS)
    .from(teamMembers)
    .where(and(eq(teamMembers.id, memberId), eq(teamMembers.workspaceId, workspaceId)));
  if (!row) throw new NotFoundError("Team member");
  return memberView(row);
}

export interface MemberChanges {
  firstName?: string | null;
  lastName?: string | null;
  role?: string | null;
  /** false deactivates the member (the row stays). */
  active?: boolean;
  /** In clear only until it is hashed here; never stored, logged or returned. */
  password?: string;
}

/** Changes what the request names; a password is checked (length) and stored as an argon2id hash. */
export async function updateMember(db: Db, workspaceId: string, id: string, changes: MemberChanges): Promise<MemberView> {
  const memberId = parsePersonId(id);
  if (memberId === null) throw new NotFoundError("Team member");
  const set: Partial<typeof teamMembers.$inferInsert> = {};
  for (const k of ["firstName", "lastName", "role", "active"] as const) if (changes[k] !== undefined) (set as Record<string, unknown>)[k] = changes[k];
  if (changes.password !== undefined) {
    const n = [...changes.password].length;
    if (n < MIN_PASSWORD_LENGTH) {
      throw new ValidationError("password_too_short", `A team member's password needs at least ${MIN_PASSWORD_LENGTH} characters.`, { problems: [{ field: "body.password", reason: `shorter than ${MIN_PASSWORD_LENGTH} characters` }] });
    }
    if (n > MAX_PASSWORD_LENGTH) {
      throw new ValidationError("password_too_long", `A team member's password has at most ${MAX_PASSWORD_LENGTH} characters.`, { problems: [{ field: "body.password", reason: `longer than ${MAX_PASSWORD_LENGTH} characters` }] });
    }
    // The member must exist before ~75 ms of hashing is spent (and a 404 must not wait for it).
    await getMember(db, workspaceId, id);
    set.passwordHash = await hashPassword(changes.password);
  }
  if (Object.keys(set).length === 0) return getMember(db, workspaceId, id);
  const [row] = await db
    .update(teamMembers)
    .set({ ...set, updatedAt: new Date() })
    .where(and(eq(teamMembers.id, memberId), eq(teamMembers.workspaceId, workspaceId)))
    .returning(VIEW_COLUMNS);
  if (!row) throw new NotFoundError("Team member");
  return memberView(row);
}
