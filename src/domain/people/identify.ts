import { and, eq, or, sql } from "drizzle-orm";
import { z } from "zod";
import type { Db } from "../../db/client.js";
import { people } from "../../db/schema.js";
import type { Logger } from "../../lib/logger.js";
import { keyedValuesSchema } from "../attributes.js";
import { ConflictError, ValidationError } from "../errors.js";
import { emailKey, normaliseEmail } from "./email.js";
import { evaluatePeople } from "../segments/realtime.js";
import { personView, type PersonRow } from "./view.js";

/** Bounds of one identify call: a profile update, not a bulk load (imports are for that). */
const MAX_ATTRIBUTES = 200;
const MAX_LABELS = 100;

const text = z.string().max(1000);
export const identifySchema = z
  .object({
    externalId: z.string().trim().min(1).max(1000).optional(),
    email: z.string().max(320).optional(),
    username: z.string().trim().min(1).max(1000).optional(),
    firstName: text.nullable().optional(),
    lastName: text.nullable().optional(),
    name: text.nullable().optional(),
    companyId: text.nullable().optional(),
    attributes: keyedValuesSchema("an attribute", z.string().min(1).max(200))
      .refine((a) => Object.keys(a).length <= MAX_ATTRIBUTES, `at most ${MAX_ATTRIBUTES} attributes`)
      .optional(),
    labels: z.array(z.string().min(1).max(200)).max(MAX_LABELS).optional(),
  })
  .strict()
  .refine((b) => b.externalId !== undefined || b.email !== undefined || b.username !== undefined, {
    message: "give at least one of externalId, email or username",
    path: ["externalId"],
  });
export type IdentifyInput = z.infer<typeof identifySchema>;

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } };
  return e.code === "23505" || e.cause?.code === "23505";
}

/** Upserts one person by its identifiers (attributes merge, labels add) and re-evaluates their dynamic segments. */
export async function identifyPerson(db: Db, workspaceId: string, input: IdentifyInput, log: Pick<Logger, "info" | "warn">) {
  let email: string | undefined;
  if (input.email !== undefined) {
    const e = normaliseEmail(input.email);
    if (!e) throw new ValidationError("invalid_email", "The email is not a valid address.", { problems: [{ field: "email", reason: "is not a valid email address" }] });
    email = e;
  }
  let result: { row: PersonRow; created: boolean };
  try {
    result = await upsert(db, workspaceId, { ...input, email });
  } catch (err) {
    // Two identifies for the same new person raced: the loser finds the winner's row on a second try.
    if (!isUniqueViolation(err)) throw err;
    result = await upsert(db, workspaceId, { ...input, email });
  }
  const changes = await evaluatePeople(db, workspaceId, [result.row.id], log);
  return {
    created: result.created,
    user: personView(result.row),
    segments: { entered: changes.entered.map((c) => c.segmentId), left: changes.left.map((c) => c.segmentId) },
  };
}

async function upsert(db: Db, workspaceId: string, input: IdentifyInput): Promise<{ row: PersonRow; created: boolean }> {
  return db.transaction(async (tx) => {
    const keys = [
      input.email !== undefined ? eq(people.emailKey, emailKey(input.email)) : undefined,
      input.externalId !== undefined ? eq(people.externalId, input.externalId) : undefined,
      input.username !== undefined ? eq(people.username, input.username) : undefined,
    ].filter((k) => k !== undefined);
    const matches = await tx
      .select({ id: people.id, externalId: people.externalId })
      .from(people)
      .where(and(eq(people.workspaceId, workspaceId), or(...keys)))
      .for("update");
    if (matches.length > 1) {
      throw new ConflictError("identity_conflict", "The identifiers given belong to different people; send the ones of one person.", {
        userIds: matches.map((m) => String(m.id)).sort(),
      });
    }
    const match = matches[0];
    // The external id is the app's stable key: an email or username never moves a person to another one.
    if (match && input.externalId !== undefined && match.externalId !== null && match.externalId !== input.externalId) {
      throw new ConflictError("identity_conflict", "That email or username belongs to a user with another externalId.", {
        userIds: [String(match.id)],
      });
    }
    const fields = {
      ...(input.email !== undefined ? { email: input.email, emailKey: emailKey(input.email) } : {}),
      ...(input.externalId !== undefined ? { externalId: input.externalId } : {}),
      ...(input.username !== undefined ? { username: input.username } : {}),
      ...(input.firstName !== undefined ? { firstName: input.firstName } : {}),
      ...(input.lastName !== undefined ? { lastName: input.lastName } : {}),
      ...(input.name !== undefined ? { name: input.name } : {}),
      ...(input.companyId !== undefined ? { companyId: input.companyId } : {}),
    };
    const attrs = JSON.stringify(input.attributes ?? {});
    let row: PersonRow;
    let created = false;
    if (match) {
      const [updated] = await tx
        .update(people)
        .set({ ...fields, attributes: sql`${people.attributes} || ${attrs}::jsonb`, updatedAt: new Date(), lastSeenAt: new Date() })
        .where(eq(people.id, match.id))
        .returning();
      row = updated!;
    } else {
      const [inserted] = await tx
        .insert(people)
        .values({ workspaceId, ...fields, attributes: sql`${attrs}::jsonb`, lastSeenAt: new Date() })
        .returning();
      row = inserted!;
      created = true;
    }
    if (input.labels?.length) {
      const names = JSON.stringify([...new Set(input.labels)]);
      await tx.execute(sql`
        insert into labels (workspace_id, name)
        select ${workspaceId}::uuid, n from jsonb_array_elements_text(${names}::jsonb) n
        order by n
        on conflict do nothing`);
      // Labels live on the person as a sorted, distinct array of label ids.
      await tx.execute(sql`
        update people p set label_ids = array(
          select unnest(p.label_ids)
          union select l.id from labels l
          where l.workspace_id = ${workspaceId}::uuid and l.name in (select jsonb_array_elements_text(${names}::jsonb))
          order by 1)
        where p.id = ${row.id}::bigint`);
    }
    return { row, created };
  });
}
