/**
 * The resources that announce themselves to a callbackUrl. Both tables carry the same webhook columns
 * (callback_url, webhook_status, webhook_attempts, webhook_last_error); what differs is the table and the view a
 * receiver gets, which is exactly what the API shows for the resource.
 */
import { and, eq } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { exports, imports } from "../../db/schema.js";
import { exportView } from "../exports/service.js";
import { summaryView } from "../imports/service.js";

export const WEBHOOK_RESOURCES = ["import", "export"] as const;
export type WebhookResource = (typeof WEBHOOK_RESOURCES)[number];

/** What a delivery needs from the resource: where to send, what to announce, and the body's `data`. */
export interface WebhookSubject {
  workspaceId: string;
  status: string;
  callbackUrl: string | null;
  view: unknown;
}

export const webhookTables = { import: imports, export: exports } as const;

/** Loads the resource as GET /v1/<resource>s/:id shows it (an import without its `errors`), scoped to the workspace. */
export async function loadWebhookSubject(db: Db, resource: WebhookResource, workspaceId: string, id: string): Promise<WebhookSubject | undefined> {
  if (resource === "import") {
    const [row] = await db.select().from(imports).where(and(eq(imports.id, id), eq(imports.workspaceId, workspaceId)));
    return row && { workspaceId: row.workspaceId, status: row.status, callbackUrl: row.callbackUrl, view: summaryView(row) };
  }
  const [row] = await db.select().from(exports).where(and(eq(exports.id, id), eq(exports.workspaceId, workspaceId)));
  return row && { workspaceId: row.workspaceId, status: row.status, callbackUrl: row.callbackUrl, view: exportView(row) };
}
