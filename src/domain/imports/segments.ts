import { and, eq } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { segments } from "../../db/schema.js";

/** Finds or creates the static segment `name`; a dynamic segment of that name is an error people can act on. */
export async function ensureStaticSegment(db: Db, workspaceId: string, name: string): Promise<{ id: string } | { error: string }> {
  await db
    .insert(segments)
    .values({ workspaceId, name, type: "static" })
    .onConflictDoNothing({ target: [segments.workspaceId, segments.name] });
  const [seg] = await db
    .select({ id: segments.id, type: segments.type })
    .from(segments)
    .where(and(eq(segments.workspaceId, workspaceId), eq(segments.name, name)));
  if (!seg) throw new Error(`segment ${name} vanished`);
  if (seg.type !== "static") return { error: `createSegment: "${name}" is a dynamic segment; choose another name.` };
  return { id: seg.id };
}

